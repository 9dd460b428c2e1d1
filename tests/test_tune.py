"""`crest tune`: a study killed and resumed to its budget without a test row read, pruning, the
best config trained by `crest train`, the search spaces, `crest compare --tuned/--tune-trials`
and `crest sweep` on the same machinery."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

import row_recorder
from conftest import SMALL_MODEL
from crest.config import MODEL_NAMES, load_config
from crest.data.schema.hdf5 import read_benchmark
from crest.errors import CrestError, DataError, TrainingDiverged
from crest.models.registry import search_space
from crest.tune.folder import StudyFolder
from crest.tune.study import DIVERGED, INTERRUPTED, RETRY_OF, budget_used

CREST = str(Path(sys.executable).with_name("crest"))
SMALL = [*SMALL_MODEL, "train.batch_size=16", "eval.batch_size=64"]


def tune_args(world: Path, out: Path, trials: int, *extra: str) -> list[str]:
    sets = [x for item in SMALL for x in ("--set", item)]
    return [
        "tune",
        "--model",
        "crest",
        "--trials",
        str(trials),
        "--epochs",
        "3",
        "--data",
        str(world),
        *sets,
        "--out",
        str(out),
        *extra,
    ]


def load(out: Path) -> optuna.Study:
    return optuna.load_study(
        study_name=StudyFolder.STUDY_NAME, storage=StudyFolder(out).storage_url
    )


class PruneNewTrials(optuna.pruners.BasePruner):
    """Prunes every trial from number ``first`` on at its first report: pruning made certain."""

    def __init__(self, first: int) -> None:
        self.first = first

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        return trial.number >= self.first


def test_a_killed_study_resumes_to_its_budget_and_never_reads_a_test_row(
    train_world, tmp_path, monkeypatch
):
    out = tmp_path / "study"
    log_file = tmp_path / "rows.log"
    env = row_recorder.child_env(tmp_path / "site", log_file)
    env["OMP_NUM_THREADS"] = "1"
    # the real executable, killed during its second trial (after the first one completed)
    proc = subprocess.Popen(
        [CREST, *tune_args(train_world, out, 3)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    second = out / "trials" / "0001" / "metrics.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline and not (second.exists() and second.read_text().count("\n")):
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "trials" / "0001" / "metrics.json").exists(), "trial 1 ended before the kill"
    states = [t.state for t in load(out).trials]
    assert states == [TrialState.COMPLETE, TrialState.RUNNING]

    # resumed in this process, with a pruner that stops every new trial at its first epoch
    from crest.cli import main
    from crest.tune import run

    read: list[int] = []
    row_recorder.install(read.extend, monkeypatch.setattr)
    monkeypatch.setattr(run, "make_pruner", lambda s, epochs: PruneNewTrials(first=3))
    assert main(tune_args(train_world, out, 3)) == 0

    study = load(out)
    trials = study.trials
    assert budget_used(study) == 3  # the budget: three trials that ended on their merits
    assert [t.state for t in trials] == [
        TrialState.COMPLETE,  # the recipe
        TrialState.FAIL,  # killed: interrupted, asked again
        TrialState.COMPLETE,  # its retry, resumed in its run folder
        TrialState.PRUNED,  # stopped at its first epoch
    ]
    assert trials[1].user_attrs[INTERRUPTED] is True
    assert trials[2].user_attrs[RETRY_OF] == 1 and trials[2].params == trials[1].params
    assert trials[2].user_attrs["folder"] == "trials/0001"
    resumed = [json.loads(x)["epoch"] for x in second.read_text().splitlines()]
    assert resumed == [1, 2, 3]
    assert trials[3].user_attrs["epochs"] == 1 < 3  # the pruned trial stopped early
    assert list(trials[3].intermediate_values) == [1]
    pruned = out / "trials" / "0003" / "metrics.jsonl"
    assert [json.loads(x)["epoch"] for x in pruned.read_text().splitlines()] == [1]
    assert not (out / "trials" / "0003" / "checkpoints").exists()  # an ended trial keeps none

    # no test row was read, by the killed process or by this one
    splits = read_benchmark(train_world).splits
    test_rows = {*splits["test_seen"].tolist(), *splits["test_unseen"].tolist()}
    child = row_recorder.read_log(log_file)
    assert child and read
    assert not test_rows & (child | set(read))

    # the report and the best config, which `crest train` takes as it is
    report = (out / "report.md").read_text()
    for part in ("## Best", "## Trials", "## Parameter importances", "pruned", "interrupted"):
        assert part in report, part
    assert (out / "history.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    best = max(
        (t for t in trials if t.state == TrialState.COMPLETE), key=lambda t: (t.value, -t.number)
    )
    assert f"(trial {best.number}," in (out / "best.yaml").read_text()
    run_dir = tmp_path / "best_run"
    res = subprocess.run(
        [CREST, "train", "--config", str(out / "best.yaml"), "--out", str(run_dir)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert res.returncode == 0, res.stderr
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["selection"] == "val" and "gzsl_h" in metrics  # the full protocol, on test
    trained = load_config(str(run_dir / "config.yaml"))
    for key, value in best.params.items():
        section, _, name = key.partition(".")
        assert getattr(getattr(trained, section), name) == pytest.approx(value)


def test_a_study_resumed_with_another_search_is_refused(tmp_path, monkeypatch):
    from crest.tune import run

    monkeypatch.setattr(run, "run_trials", lambda *a, **k: None)  # no training needed here
    out = tmp_path / "s"
    run.tune(run.TuneSettings("dazle", 1, out, overrides=("train.epochs=2",)))
    with pytest.raises(CrestError, match=r"another search.*train\.epochs=3"):
        run.tune(run.TuneSettings("dazle", 1, out, overrides=("train.epochs=3",)))
    with pytest.raises(CrestError, match="model msdn"):
        run.tune(run.TuneSettings("msdn", 1, out, overrides=("train.epochs=2",)))
    with pytest.raises(CrestError, match="validation_only"):
        run.tune(run.TuneSettings("dazle", 1, out, overrides=("train.validation_only=false",)))


def test_a_key_set_by_the_user_is_held_fixed(tmp_path):
    from crest.tune.run import TuneSettings, base_config

    cfg, space = base_config(TuneSettings("transzero", 2, tmp_path, overrides=("train.lr=0.01",)))
    assert "train.lr" not in space.keys and cfg.train.lr == 0.01
    assert cfg.train.validation_only and cfg.train.selection == "val"


def test_a_diverged_trial_is_pruned_and_a_crashed_one_asked_again(tmp_path, monkeypatch):
    from crest.tune import objective, run

    calls = {"n": 0}

    def fake_run_once(cfg, folder, on_epoch=None):
        calls["n"] += 1
        if calls["n"] == 1:
            raise TrainingDiverged("non-finite loss at val epoch 1 step 0")
        raise DataError(folder, "feature_map", "a disk that went away")

    monkeypatch.setattr(objective, "run_once", fake_run_once)
    out = tmp_path / "s"
    with pytest.raises(DataError):
        run.tune(run.TuneSettings("dazle", 3, out, overrides=("train.epochs=2",)))
    study = load(out)
    first, second = study.trials
    assert first.state == TrialState.PRUNED and "non-finite" in first.user_attrs[DIVERGED]
    assert second.state == TrialState.FAIL and second.user_attrs[INTERRUPTED]
    assert budget_used(study) == 1  # the crash does not count: it is asked again on resume
    monkeypatch.setattr(run, "run_trials", lambda *a, **k: None)
    run.tune(run.TuneSettings("dazle", 3, out, overrides=("train.epochs=2",)))
    waiting = load(out).get_trials(states=(TrialState.WAITING,))
    assert [t.user_attrs[RETRY_OF] for t in waiting] == [1]


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_every_search_space_holds_every_recipe_value(model):
    from crest.compare import compare_config

    space = search_space(model)
    assert {"train.lr", "train.weight_decay"} <= set(space.keys)
    configs = ["synthetic", "cub", "sun", "awa2"]
    if model == "crest":
        configs += ["cub-paper", "sun-paper", "awa2-paper"]
    for config in configs:
        cfg = compare_config(config, model, "val", 0, [])
        for key, value in space.values_in(cfg).items():
            param = next(p for p in space.params if p.key == key)
            assert param.contains(value), (
                f"{model} {config}: {key}={value} not in {param.describe()}"
            )


def test_sweep_runs_a_grid_study_and_resumes_without_training_again(tmp_path):
    from crest.experiments import sweep
    from crest.run_folder import RunFolder

    trained: list[Path] = []

    def stub(cfg, folder):
        trained.append(folder)
        metrics = {"selection": "final", "czsl_acc": 0.5, "gzsl_u": 0.2, "gzsl_s": 0.6}
        metrics["gzsl_h"] = cfg.loss.lambda_cal + cfg.train.seed / 100
        RunFolder(folder).root.mkdir(parents=True)
        RunFolder(folder).write_metrics(metrics)
        return metrics

    base = load_config(None, [])
    out = tmp_path / "sw"
    results = sweep(base, out, "loss.lambda_cal", [0.0, 0.2], seeds=[0, 1], trainer=stub)
    assert [(r.label, r.seed) for r in results] == [("0.0", 0), ("0.0", 1), ("0.2", 0), ("0.2", 1)]
    assert results[3].metrics["gzsl_h"] == pytest.approx(0.21)
    assert len(trained) == 4
    study = load(out)
    assert sorted((t.params["loss.lambda_cal"], t.params["train.seed"]) for t in study.trials) == [
        (0.0, 0),
        (0.0, 1),
        (0.2, 0),
        (0.2, 1),
    ]
    again = sweep(base, out, "loss.lambda_cal", [0.0, 0.2], seeds=[0, 1], trainer=stub)
    assert len(trained) == 4 and [r.metrics for r in again] == [r.metrics for r in results]


@pytest.fixture(scope="module")
def dazle_study(train_world, tmp_path_factory) -> Path:
    from crest.tune.run import TuneSettings, tune

    out = tmp_path_factory.mktemp("tuned") / "dazle"
    sets = (f"data.path={train_world}", *SMALL, "train.epochs=2")
    tune(TuneSettings("dazle", 2, out, overrides=sets))
    return out


def test_compare_trains_tuned_configs_and_says_so(dazle_study, train_world, tmp_path):
    from crest.cli import main

    out = tmp_path / "cmp"
    sets = [x for item in [f"data.path={train_world}", *SMALL] for x in ("--set", item)]
    args = ["compare", *sets, "--seeds", "0", "--selections", "val", "--out", str(out)]
    assert main([*args, "--tuned", str(dazle_study)]) == 0
    report = (out / "report.md").read_text()
    assert "| dazle | val | 1 |" in report and "2 trials × 2 epochs" in report
    trained = load_config(str(out / "dazle" / "val" / "seed0" / "config.yaml"))
    best = load_config(str(dazle_study / "best.yaml"))
    assert trained.train.lr == best.train.lr and trained.dazle.lambda_cal == best.dazle.lambda_cal
    assert not trained.train.validation_only


def test_compare_tunes_every_model_with_the_same_budget_first(train_world, tmp_path):
    from crest.cli import main

    out = tmp_path / "cmp"
    sets = [x for item in [f"data.path={train_world}", *SMALL] for x in ("--set", item)]
    args = ["compare", *sets, "--models", "dazle", "msdn", "--seeds", "0", "--selections", "val"]
    assert main([*args, "--tune-trials", "2", "--tune-epochs", "1", "--out", str(out)]) == 0
    report = (out / "report.md").read_text()
    assert "the same budget, 2 trials × 1 epochs each" in report
    for model in ("dazle", "msdn"):
        assert budget_used(load(out / "tune" / model)) == 2
        assert f"| {model} | val | 1 |" in report
        assert load_config(str(out / model / "val" / "seed0" / "config.yaml")).train.epochs == 1


def test_docs_list_every_searched_key():
    text = (Path(__file__).resolve().parents[1] / "docs" / "tune.md").read_text()
    for model in MODEL_NAMES:
        for key in search_space(model).keys:
            assert f"`{key}`" in text, (model, key)
