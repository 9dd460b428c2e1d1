"""Whole epochs, measured: training plus evaluation on a benchmark file under each
``data.cache`` mode, and the time a full run would take projected from them.

A step benchmark misses what a run spends around the step (reading features, the DataLoader,
evaluation, host copies); this runs the real trainer on a real file, so all of it is counted.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from crest.config import load_config
from crest.engine.train import Trainer
from crest.markdown import md_table

#: CUB's xlsa17 sizes: trainval images trained on per epoch, test images scored per evaluation
CUB_TRAIN_IMAGES = 7057
CUB_TEST_IMAGES = 4731
FULL_RUN_EPOCHS = 200


@dataclass
class EpochTiming:
    mode: str
    epochs: int
    train_images: int  # per epoch
    eval_images: int  # per evaluation
    cache_seconds: float  # reading the features into memory, once per run (0 for stream)
    train_seconds: float  # of the last epoch (the first carries warm-up and compilation)
    eval_seconds: float  # of the last epoch's evaluation
    train_samples_per_s: float
    projected_full_run_minutes: float  # FULL_RUN_EPOCHS epochs at CUB's sizes, linear in images


def project_minutes(t: EpochTiming, train_images: int, eval_images: int, epochs: int) -> float:
    """A full run from measured per-image costs: cache fill + epochs × (train + evaluation)."""
    per_train = t.train_seconds / max(1, t.train_images)
    per_eval = t.eval_seconds / max(1, t.eval_images)
    cache = t.cache_seconds * (train_images + eval_images) / max(1, t.train_images + t.eval_images)
    return (cache + epochs * (per_train * train_images + per_eval * eval_images)) / 60.0


def time_epochs(
    data: str | Path,
    modes: list[str],
    epochs: int = 2,
    config: str = "cub",
    overrides: list[str] | None = None,
) -> list[EpochTiming]:
    """Train ``epochs`` epochs (selection final, evaluation every epoch) once per cache mode."""
    results = []
    for mode in modes:
        cfg = load_config(
            config,
            [
                f"data.path={data}",
                *(overrides or []),  # a model's recipe first: the timing's own settings win
                f"data.cache={mode}",
                f"train.epochs={epochs}",
                "train.selection=final",
                "train.eval_every=1",
            ],
        )
        with tempfile.TemporaryDirectory(prefix=f"crest-epochs-{mode}-") as out:
            trainer = Trainer(cfg, Path(out) / "run")
            trainer.run()
            last = trainer.history[-1]
            task = trainer.final_task()
            t = EpochTiming(
                mode=mode,
                epochs=epochs,
                train_images=len(task.train_rows),
                eval_images=len(task.eval_seen) + len(task.eval_unseen),
                cache_seconds=round(trainer.cache_seconds, 3),
                train_seconds=float(last["train_seconds"]),
                eval_seconds=float(last.get("eval_seconds", 0.0)),
                train_samples_per_s=float(last["samples_per_s"]),
                projected_full_run_minutes=0.0,
            )
            t.projected_full_run_minutes = round(
                project_minutes(t, CUB_TRAIN_IMAGES, CUB_TEST_IMAGES, FULL_RUN_EPOCHS), 2
            )
            results.append(t)
    return results


def epochs_table(rows: list[EpochTiming]) -> str:
    header = ["data.cache", "images trained / scored", "cache fill s", "epoch: train s"]
    header += [
        "epoch: eval s",
        "train samples/s",
        f"projected {FULL_RUN_EPOCHS}-epoch CUB run (min)",
    ]
    cells = [
        [
            t.mode,
            f"{t.train_images} / {t.eval_images}",
            f"{t.cache_seconds:.1f}",
            f"{t.train_seconds:.2f}",
            f"{t.eval_seconds:.2f}",
            f"{t.train_samples_per_s:.0f}",
            f"{t.projected_full_run_minutes:.1f}",
        ]
        for t in rows
    ]
    return md_table(header, cells)


def to_dicts(rows: list[EpochTiming]) -> list[dict[str, Any]]:
    return [asdict(t) for t in rows]


@dataclass
class RunSplit:
    """Where a whole `val`-protocol run's time goes: validation phase, opinion fit, final phase."""

    model: str
    epochs: int  # trained in both phases together
    total_seconds: float  # the run's wall time (caching the features included)
    steps_seconds: float  # forward, backward and optimiser steps
    data_seconds: float  # waiting for batches (CPU runs; on CUDA it is inside steps_seconds)
    eval_seconds: float  # scoring the validation classes every epoch, the test classes once
    opinion_seconds: float  # fitting the reported opinion on validation outputs, once
    checkpoint_seconds: float  # writing last.pt (and best*.pt) after every epoch
    cache_seconds: float  # reading the features into memory, once
    #: a steady epoch (means over the epochs after each phase's first, which carries one-off
    #: imports and allocations; an epoch without evaluation counts as 0 s of it): steps, data,
    #: evaluation, checkpoint, and the opinion fit spread over the run's epochs
    epoch_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def epoch_around_steps_share(self) -> float:
        """Evaluation, opinion fit and checkpoints as a share of a steady epoch."""
        e = self.epoch_seconds
        spent = e.get("eval", 0.0) + e.get("opinion", 0.0) + e.get("checkpoint", 0.0)
        return spent / max(1e-9, sum(e.values()))

    @property
    def other_seconds(self) -> float:
        parts = self.steps_seconds + self.data_seconds + self.eval_seconds
        parts += self.opinion_seconds + self.checkpoint_seconds + self.cache_seconds
        return max(0.0, self.total_seconds - parts)

    @property
    def around_steps_share(self) -> float:
        """Evaluation, opinion fit and checkpoints as a share of the epochs' time (the run less
        its one-off feature caching)."""
        spent = self.eval_seconds + self.opinion_seconds + self.checkpoint_seconds
        return spent / max(1e-9, self.total_seconds - self.cache_seconds)


def split_run(
    data: str | Path,
    epochs: int,
    config: str = "synthetic",
    overrides: list[str] | None = None,
) -> RunSplit:
    """Train one `val`-protocol run of ``epochs`` validation epochs (validation scored every
    epoch, the reported opinion fitted on validation, retrained on trainval up to the chosen
    epoch and scored on test after it) and split its wall time into steps, data, evaluation,
    opinion fit, checkpoints and caching."""
    cfg = load_config(
        config,
        [
            f"data.path={data}",
            *(overrides or []),  # a model's recipe first: the run's own settings win
            f"train.epochs={epochs}",
            "train.selection=val",
            "train.eval_every=1",
        ],
    )
    with tempfile.TemporaryDirectory(prefix="crest-split-") as out:
        trainer = Trainer(cfg, Path(out) / "run")
        started = time.perf_counter()
        trainer.run()
        total = time.perf_counter() - started
    h = trainer.history

    def total_of(key: str) -> float:
        return float(sum(float(e.get(key, 0.0)) for e in h))

    data_s = total_of("data_seconds")
    steady = [e for e in h if int(e["epoch"]) > 1] or h

    def mean_of(key: str) -> float:
        # a mean, not a median: under `val` the final phase scores only its last epoch, and a
        # median would call that evaluation free
        return round(statistics.fmean(float(e.get(key, 0.0)) for e in steady), 4)

    epoch = {
        "steps": round(mean_of("train_seconds") - mean_of("data_seconds"), 4),
        "data": mean_of("data_seconds"),
        "eval": mean_of("eval_seconds"),
        "checkpoint": mean_of("checkpoint_seconds"),
        "opinion": round(trainer.opinion_seconds / max(1, len(h)), 4),
    }
    return RunSplit(
        model=cfg.model.name,
        epochs=len(h),
        total_seconds=round(total, 3),
        steps_seconds=round(total_of("train_seconds") - data_s, 3),
        data_seconds=round(data_s, 3),
        eval_seconds=round(total_of("eval_seconds"), 3),
        opinion_seconds=round(trainer.opinion_seconds, 3),
        checkpoint_seconds=round(total_of("checkpoint_seconds"), 3),
        cache_seconds=round(trainer.cache_seconds, 3),
        epoch_seconds=epoch,
    )


def split_table(rows: list[RunSplit]) -> str:
    """One row per run: seconds and share of the run per part."""

    def part(seconds: float, total: float) -> str:
        return f"{seconds:.1f} ({100 * seconds / max(total, 1e-9):.0f} %)"

    header = ["model", "epochs", "run s", "steps", "data", "evaluation", "opinion fit"]
    header += ["checkpoints", "feature cache", "other", "eval + opinion + checkpoints: run"]
    header += ["steady epoch s (steps / eval / checkpoint / opinion)", "… share of the epoch"]
    cells = []
    for r in rows:
        t = r.total_seconds
        cells.append(
            [
                r.model,
                str(r.epochs),
                f"{t:.1f}",
                part(r.steps_seconds, t),
                part(r.data_seconds, t),
                part(r.eval_seconds, t),
                part(r.opinion_seconds, t),
                part(r.checkpoint_seconds, t),
                part(r.cache_seconds, t),
                part(r.other_seconds, t),
                f"{100 * r.around_steps_share:.1f} %",
                " / ".join(
                    f"{r.epoch_seconds.get(k, 0.0):.2f}"
                    for k in ("steps", "eval", "checkpoint", "opinion")
                ),
                f"{100 * r.epoch_around_steps_share:.1f} %",
            ]
        )
    return md_table(header, cells)
