"""The training loop: phases (validation protocol, final training), per-epoch evaluation,
atomic checkpoints every epoch, exact resume, rank-0-only side effects under torchrun."""

from __future__ import annotations

import logging
import math
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import BatchSampler
from tqdm.auto import tqdm

from crest.atomic import write_text_atomic
from crest.config import Config, validate_config, validate_for_data
from crest.data.schema.benchmark import validation_protocol
from crest.data.schema.class_side import class_side_state
from crest.data.schema.dataset import FeatureDataset
from crest.data.schema.feature_cache import (
    FeatureCache,
    RowBatches,
    choose_cache_mode,
    feature_bytes,
    measure_free_memory,
)
from crest.data.schema.hdf5 import read_benchmark
from crest.data.synthetic.worlds import default_world
from crest.device import (
    autocast,
    choose_device,
    effective_precision,
    epoch_seed,
    seed_everything,
    set_deterministic,
)
from crest.engine import distributed as D
from crest.engine.checkpoint import load_checkpoint, save_checkpoint
from crest.engine.evaluate import Outputs, collect_outputs, mu_curve, zsl_metrics
from crest.engine.opinion_fit import fit_from_outputs, fit_on_validation
from crest.engine.optimizers import build_optimizer, set_warmup_lr
from crest.engine.report import config_summary, write_report
from crest.engine.resume import resumed_config
from crest.engine.samplers import EpochShuffle, PKBatchSampler
from crest.engine.selection import (
    ValChoice,
    choose_val_setting,
    epochs_trained,
    epochs_without_improvement,
    final_metrics,
    improves,
    oracle_score,
    val_score,
    validation_only_line,
)
from crest.engine.tracking import NoTracker, Tracker, open_tracker
from crest.engine.weight_average import WeightAverage
from crest.errors import TrainingDiverged
from crest.metrics import Key
from crest.models import ZSLModel, create_loss, create_model
from crest.models.contract import ModelLoss
from crest.opinion import OpinionSettings
from crest.run_folder import RunFolder
from crest.run_lock import RunLock, check_free

log = logging.getLogger(__name__)
#: training images read by a data-dependent initialisation (model.front_init=centered): the
#: mean over 64 images' regions is stable to a few 1e-3 on the like worlds
INIT_SAMPLE = 64
#: log-spaced bins for the per-epoch vacuity histograms: u = K/S spans decades during training
VACUITY_EDGES = np.geomspace(1e-4, 1.0, 25)
#: called with each epoch's history entry once it is saved (metrics.jsonl and last.pt written);
#: it may raise to stop the run, which then stays a cut-off run that --resume continues
#: (`crest tune` stops a pruned trial so). Rank 0 only: under torchrun it must not raise.
EpochHook = Callable[[dict[str, Any]], None]


def vacuity_histogram(u: np.ndarray) -> np.ndarray:
    """Counts on VACUITY_EDGES; values outside the range go to the end bins (none is lost)."""
    clipped = np.clip(u, VACUITY_EDGES[0], VACUITY_EDGES[-1])
    return np.histogram(clipped, VACUITY_EDGES)[0]


@dataclass(frozen=True)
class Task:
    """What one phase trains on and is scored on (file rows and class ids)."""

    phase: str  # "val": the validation protocol; "final": trainval, scored on test
    train_rows: np.ndarray
    seen: np.ndarray
    unseen: np.ndarray
    eval_seen: np.ndarray
    eval_unseen: np.ndarray
    eval_split: str  # "validation" or "test"


def resolve_data(cfg: Config) -> Path:
    return Path(cfg.data.path) if cfg.data.path else default_world()


class Trainer:
    def __init__(
        self,
        cfg: Config,
        out_dir: str | Path,
        resume: bool = False,
        on_epoch: EpochHook | None = None,
    ) -> None:
        self.cfg = cfg
        self.on_epoch = on_epoch
        self.folder = RunFolder(out_dir)
        self.lock = RunLock(out_dir)
        # a folder this run makes is removed again if the run fails before its first checkpoint;
        # in a folder that was there, only what the run added to it (_remove_if_empty)
        self.made_folder = not self.folder.root.exists()
        self.found = {p for p in self._own_paths() if p.exists()}
        writer = int(os.environ.get("RANK", "0")) == 0  # one writer per folder: rank 0 of one run
        if writer:
            check_free(out_dir)  # fail before any work; the lock itself is taken below
        self._setup(resume)  # reads and checks only: a refused run leaves no folder behind
        if writer:
            self.lock.acquire()

    def _setup(self, resume: bool) -> None:
        self.resume_state: dict[str, Any] | None = None
        if resume:
            self.cfg, self.resume_state = resumed_config(self.folder.root, self.cfg)
            if self.resume_state is None:
                log.warning(
                    "%s: no checkpoint yet; starting the run from its %s",
                    self.folder.root,
                    RunFolder.CONFIG,
                )
        self.device = choose_device(self.cfg.train.device)
        # what the steps compute in: bf16 on a CPU without bf16 units falls back to fp32, said once
        self.precision = effective_precision(self.device, self.cfg.train.precision)
        self.dist = D.init_distributed(self.device.type)
        set_deterministic(self.cfg.train.deterministic)
        # rank 0 may have to generate the default world first; the others take its path
        local = str(resolve_data(self.cfg)) if self.dist.is_main else ""
        self.data_path = Path(str(D.broadcast_object(self.dist, local)))
        self.bench = read_benchmark(self.data_path)
        validate_config(self.cfg)
        if self.resume_state is None:  # a checkpointed model was built under the rules of its day
            validate_for_data(self.cfg, self.bench.num_attributes, str(self.data_path))
        self.model: ZSLModel | None = None
        # saved in every checkpoint, so that a trained model needs no training file
        self._class_side = class_side_state(self.bench)
        self.cache: FeatureCache | None = None
        self.cache_seconds = 0.0  # spent reading features into the cache
        self.opinion_seconds = 0.0  # spent fitting the reported opinion on validation outputs
        # the validation outputs of the best validation epoch so far (epoch, seen, unseen): the
        # opinion is fitted on them without scoring the validation rows a second time
        self.best_val_outputs: tuple[int, Outputs, Outputs] | None = None
        self.tracker: Tracker = NoTracker()  # train.logger, rank 0 only
        self.history: list[dict[str, Any]] = (
            list(self.resume_state["history"]) if self.resume_state else []
        )
        self.selection_state: dict[str, Any] = (
            dict(self.resume_state.get("selection_state", {})) if self.resume_state else {}
        )

    # ---- tasks ---------------------------------------------------------------------------
    def final_task(self) -> Task:
        b = self.bench
        return Task(
            "final",
            b.splits["trainval"],
            b.seen_classes,
            b.unseen_classes,
            b.splits["test_seen"],
            b.splits["test_unseen"],
            "test",
        )

    def val_task(self) -> Task:
        p = validation_protocol(self.bench, seed=self.cfg.train.seed)
        if p.source == "drawn":
            log.warning(
                "%s has no train_loc/val_loc: %d validation classes drawn among the trainval "
                "classes (seeded; test rows unused)",
                self.data_path,
                len(p.unseen_classes),
            )
        return Task(
            "val", p.fit, p.seen_classes, p.unseen_classes, p.val_seen, p.val_unseen, "validation"
        )

    # ---- the run -------------------------------------------------------------------------
    def run(self, cleanup: bool = True) -> dict[str, Any]:
        """Train and select; ``cleanup=False`` keeps the process group (for callers that go on).
        The run folder's lock is released at the end, however the run ends."""
        finished = False
        try:
            if self.dist.is_main:
                self.tracker = open_tracker(self.cfg.train.logger, self.folder, self.cfg.to_dict())
            metrics = self._run(cleanup)
            finished = True
            return metrics
        finally:
            self.tracker.close()
            self.lock.release()
            if not finished:
                self._remove_if_empty()

    def _own_paths(self) -> list[Path]:
        """What a run writes into its folder before its first checkpoint."""
        f = self.folder
        return [
            f.config_file,
            f.root / RunFolder.ENVIRONMENT,
            f.checkpoints,
            f.tensorboard,
            f.wandb,
            self.lock.path,
        ]

    def _remove_if_empty(self) -> None:
        """A run that failed before its first checkpoint leaves nothing behind: the folder, if
        it made it, else what it added to it (config.yaml and env.json of a run that never
        trained are not a run, and would pass for one)."""
        if not (self.dist.is_main and self.folder.root.exists()):
            return
        if self.folder.checkpoints.exists() and any(self.folder.checkpoints.glob("*.pt")):
            return
        if self.made_folder:
            log.warning(
                "%s: the run failed before its first checkpoint; folder removed", self.folder.root
            )
            shutil.rmtree(self.folder.root, ignore_errors=True)
            return
        added = [p for p in self._own_paths() if p.exists() and p not in self.found]
        for path in added:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        if added:
            log.warning(
                "%s: the run failed before its first checkpoint; removed what it had added (%s)",
                self.folder.root,
                ", ".join(p.name for p in added),
            )

    def _run(self, cleanup: bool) -> dict[str, Any]:
        cfg = self.cfg
        if self.dist.is_main:
            self.folder.prepare(cfg, self.device)
        D.barrier(self.dist)
        selection = cfg.train.selection
        # the validation phase runs only if validation has not chosen yet (a resumed run may be
        # past it); its task is drawn once, and the cache holds only the rows still to be read
        val = (
            self.val_task()
            if selection == "val" and "val_epoch" not in self.selection_state
            else None
        )
        # a validation-only run never reads the test split, not even into the cache
        final = [] if cfg.train.validation_only else [self.final_task()]
        self.cache = self._feature_cache([*final, *([val] if val is not None else [])])
        if selection == "val":
            if val is not None:
                self.train_phase(val, cfg.train.epochs)
                choice = choose_val_setting(self.history, cfg.model.mu)
                self.selection_state = {
                    "val_epoch": choice.epoch,
                    "val_gamma": choice.gamma,
                    "val_h": choice.h,
                    "val_mu": choice.mu,
                    "val_czsl": choice.czsl,
                }
                if cfg.eval.opinion == "validation" and not cfg.train.validation_only:
                    started = time.perf_counter()
                    opinion = self._fit_opinion(val, choice)
                    self.opinion_seconds = time.perf_counter() - started
                    if opinion is not None:
                        self.selection_state["opinion"] = opinion.to_dict()
                self.resume_state = None  # the final phase starts from scratch
                if self.dist.is_main:
                    self.folder.write_val_selection(self.selection_state)
                    log.info(
                        "validation chose epoch %d, γ=%.3f and μ=%s (val H %.1f%%)",
                        choice.epoch,
                        choice.gamma,
                        "model.mu" if choice.mu is None else f"{choice.mu:g}",
                        100 * choice.h,
                    )
            if cfg.train.validation_only:
                return self._finish_validation_only(cleanup)
            epochs, gamma = (
                int(self.selection_state["val_epoch"]),
                float(self.selection_state["val_gamma"]),
            )
            mu = self.selection_state.get("val_mu")
            if mu is not None:  # the final model trains as validated, and scores with its μ
                cfg.model.score_mu = float(mu)
                if self.dist.is_main:  # config.yaml is the config the reported model ran with
                    self.folder.prepare(cfg, self.device)
        else:
            epochs, gamma, mu = cfg.train.epochs, cfg.eval.gamma, None
        self.train_phase(self.final_task(), epochs, gamma=gamma)
        metrics = final_metrics(self.history, selection, gamma, mu)
        metrics["data"] = str(self.data_path)
        metrics["epochs_trained"] = epochs_trained(self.history)
        metrics["precision"] = self.precision  # what the steps computed in (bf16 may fall back)
        metrics[Key.OPINION] = self._opinion("final").describe()
        if self.dist.is_main:
            self.folder.write_metrics(metrics)
            write_report(self.folder.root, self.cfg.to_dict(), metrics, self.history)
        if cleanup:
            D.cleanup(self.dist)
        return metrics

    def _finish_validation_only(self, cleanup: bool) -> dict[str, Any]:
        """metrics.json of a ``train.validation_only`` run: validation's choice and its scores on
        the validation classes, labelled so that nobody reads them as test results."""
        state = self.selection_state
        metrics: dict[str, Any] = {
            "selection": "val",
            "validation_only": True,
            "epoch": int(state["val_epoch"]),
            Key.GAMMA: float(state["val_gamma"]),
            "data": str(self.data_path),
            "epochs_trained": epochs_trained(self.history),
            "precision": self.precision,
            **{k: state.get(k) for k in ("val_epoch", "val_gamma", "val_mu", "val_h", "val_czsl")},
            Key.SELECTION_DETAIL: (
                f"VALIDATION ONLY: epoch {state['val_epoch']}, γ {state['val_gamma']:.3f}"
                + ("" if state.get("val_mu") is None else f", μ {state['val_mu']:g}")
                + " chosen by H on the validation classes; val_h and val_czsl are validation "
                "scores (no test split read)"
            ),
        }
        if self.dist.is_main:
            self.folder.write_metrics(metrics)
            report = (
                f"# Validation only\n\n{metrics[Key.SELECTION_DETAIL]}.\n\n"
                f"- {validation_only_line(metrics)}"
                + f"\n\n## Config\n\n{config_summary(self.cfg.to_dict())}\n"
            )
            write_text_atomic(self.folder.root / "report.md", report)
        if cleanup:
            D.cleanup(self.dist)
        return metrics

    def _opinion(self, phase: str) -> OpinionSettings:
        """The reported opinion's settings for evaluations of ``phase``: the validation phase
        uses the fixed ones (nothing is fitted yet); the final phase those fitted on validation."""
        if phase == "val":
            return OpinionSettings()
        return OpinionSettings.from_dict(self.selection_state.get("opinion"))

    def _fit_opinion(self, val: Task, choice: ValChoice) -> OpinionSettings | None:
        """The reported opinion fitted on the validation outputs of the epoch validation chose:
        those its evaluation kept, or (a run resumed after that epoch) the outputs of
        ``best_val.pt``'s model; None when that checkpoint is missing."""
        gamma, mu = choice.gamma, choice.mu
        kept, self.best_val_outputs = self.best_val_outputs, None
        if kept is not None and kept[0] == choice.epoch:  # the same on every rank: one history
            opinion = fit_from_outputs(
                kept[1], kept[2], val.seen, val.unseen, gamma, mu, self.cfg.eval.error_model
            )
            log.info("reported opinion: %s", opinion.describe())
            return opinion
        D.barrier(self.dist)  # rank 0 wrote best_val.pt
        path = self.folder.best_val_checkpoint
        # rank 0 decides, so that no rank goes on to gather outputs the others never send
        if not D.broadcast_object(self.dist, path.exists() if self.dist.is_main else None):
            log.warning("%s missing: the reported opinion keeps its fixed settings", path)
            return None
        model = create_model(self.cfg, self.bench).to(self.device)
        model.load_state_dict(load_checkpoint(path, self.device)["model"])
        opinion = fit_on_validation(
            model.eval(),
            self.data_path,
            self.bench.labels,
            (val.eval_seen, val.eval_unseen),
            (val.seen, val.unseen),
            gamma,
            mu,
            self.device,
            self.cfg.eval.batch_size,
            self.precision,
            self.cache,
            self.cfg.eval.error_model,
        )
        log.info("reported opinion: %s", opinion.describe())
        return opinion

    def _feature_cache(self, tasks: list[Task]) -> FeatureCache | None:
        """Every row the ``tasks`` read, read once (``data.cache``), or None to stream them."""
        rows = np.unique(
            np.concatenate([np.r_[t.train_rows, t.eval_seen, t.eval_unseen] for t in tasks])
        )
        needed = feature_bytes(self.data_path, len(rows))
        mode = self.cfg.data.cache
        chosen = choose_cache_mode(mode, needed, self.device, measure_free_memory(self.device))
        if mode == "auto":
            log.info(
                "data.cache=auto chose %s for %d feature maps (%.2f GB)",
                chosen,
                len(rows),
                needed / 1e9,
            )
        if chosen == "stream":
            return None
        start = time.perf_counter()
        on_device = chosen == "device"
        cache = FeatureCache(
            self.data_path,
            rows,
            self.device if on_device else torch.device("cpu"),
            pin=not on_device and self.device.type == "cuda",
        )
        self.cache_seconds = time.perf_counter() - start
        log.info(
            "cached %d feature maps (%.2f GB) in %s memory in %.1f s",
            len(rows),
            cache.nbytes / 1e9,
            cache.device.type if on_device else "host",
            self.cache_seconds,
        )
        return cache

    def train_phase(self, task: Task, epochs: int, gamma: float | None = None) -> None:
        cfg, dev = self.cfg, self.device
        gamma = cfg.eval.gamma if gamma is None else gamma
        seed_everything(epoch_seed(cfg.train.seed, 0))
        model = create_model(cfg, self.bench).to(dev)
        optimizer = build_optimizer(cfg.train, model.parameters())
        start = 1
        state = self.resume_state
        if state is None or state.get("phase") != task.phase:
            if model.wants_data_init:  # a fresh phase only: a resumed one loads its weights
                model.initialize_from_data(self._init_sample(task))
        else:  # with train.ema_decay, "model" holds the average and "trained_model" the weights
            model.load_state_dict(state.get("trained_model", state["model"]))
            optimizer.load_state_dict(state["optimizer"])
            start = int(state["epoch"]) + 1
            log.info("resuming %s phase at epoch %d", task.phase, start)
        average = None
        if cfg.train.ema_decay > 0:
            average = WeightAverage(model, cfg.train.ema_decay)
            if start > 1 and state is not None and "trained_model" in state:
                average.load(state["model"], state["weight_average"])
        # what is evaluated, chosen, checkpointed as "model" and reported
        reported: ZSLModel = model if average is None else average.module
        net: torch.nn.Module = model
        if self.dist.enabled:
            net = DistributedDataParallel(
                model, device_ids=[dev.index] if dev.type == "cuda" else None
            )
        if cfg.train.compile:
            # the training step only: checkpoints and evaluation use the eager `model`, whose
            # parameters the compiled module shares
            net = torch.compile(net, backend=cfg.train.compile_backend)  # type: ignore[assignment]
        criterion = create_loss(cfg, torch.as_tensor(task.seen), torch.as_tensor(task.unseen)).to(
            dev
        )
        loader, sampler = self._loader(task)
        self.model = reported  # the model being trained (after run(): the final one)
        for epoch in range(start, epochs + 1):
            if self._out_of_patience(task):  # a resumed phase that had already stopped
                break
            entry = self._train_epoch(
                net, model, optimizer, criterion, loader, sampler, task, epoch, epochs, average
            )
            if self._evaluates(task, epoch, epochs):
                started = time.perf_counter()
                metrics, scored = self._evaluate(reported, task, gamma)  # sharded across ranks
                entry.update(metrics)
                entry["eval_seconds"] = round(time.perf_counter() - started, 3)
                if task.phase == "val" and improves(
                    entry, self._earlier(entry, "val", Key.BEST_H), val_score
                ):  # the rule best_val.pt follows (_checkpoint)
                    self.best_val_outputs = (epoch, *scored)
            self.history.append(entry)
            if self.dist.is_main:
                started = time.perf_counter()
                self._checkpoint(reported, optimizer, task, epoch, entry, average, model)
                entry["checkpoint_seconds"] = round(time.perf_counter() - started, 3)
                self.folder.write_history(self.history)
                self.tracker.log(entry)
                log.info(_epoch_line(entry, epochs))
                if self.on_epoch is not None:
                    self.on_epoch(entry)
            D.barrier(self.dist)
            if self._out_of_patience(task):
                log.info(
                    "%s phase stopped at epoch %d: no better %s for %d epochs (train.patience)",
                    task.phase,
                    epoch,
                    "validation H" if task.phase == "val" else "test H (oracle)",
                    cfg.train.patience,
                )
                break

    def _evaluates(self, task: Task, epoch: int, epochs: int) -> bool:
        """Whether ``epoch`` is scored: every ``train.eval_every`` epochs and the last. Under
        `val` the final phase is scored once, at the epoch validation chose, unless
        ``train.test_curve``: nothing reads the test curve there, and skipping it keeps a cheap
        model's epoch from going mostly to evaluation (docs/performance.md)."""
        train = self.cfg.train
        if epoch == epochs:
            return True
        if task.phase == "final" and train.selection == "val" and not train.test_curve:
            return False
        return epoch % max(1, train.eval_every) == 0

    def _out_of_patience(self, task: Task) -> bool:
        """Whether ``task``'s phase has gone ``train.patience`` epochs without a better selection
        score (read from the history alone, so a resumed run decides as the original would)."""
        patience = self.cfg.train.patience
        watched = task.phase == "val" or self.cfg.train.selection == "test-oracle"
        if patience <= 0 or not watched:
            return False
        score = val_score if task.phase == "val" else oracle_score("h")
        return epochs_without_improvement(self.history, task.phase, score) >= patience

    def _init_sample(self, task: Task) -> torch.Tensor:
        """The feature maps a data-dependent initialisation reads: up to INIT_SAMPLE training
        rows spread evenly over the phase's rows (the same on every rank, so the ranks start
        equal), from the cache, or read from the file like streamed batches."""
        n = len(task.train_rows)
        rows = np.unique(task.train_rows[np.linspace(0, n - 1, min(n, INIT_SAMPLE)).astype(int)])
        if self.cache is not None:
            return self.cache.gather(rows).to(self.device)
        data = FeatureDataset(self.data_path, rows, labels=self.bench.labels)
        return torch.from_numpy(data.read_rows(np.arange(len(rows)))).to(self.device)

    def _loader(self, task: Task) -> tuple[RowBatches, Any]:
        """This phase's training batches (positions into ``task.train_rows``), from the cache or
        streamed: the same batches either way, fixed by the seed and the epoch."""
        cfg = self.cfg
        rows = len(task.train_rows)
        global_batch = D.phase_batch(
            cfg.train.batch_size, rows, cfg.train.min_steps_per_epoch, self.dist.world_size
        )
        if global_batch != cfg.train.batch_size and self.dist.is_main:
            log.info(
                "%s phase: batch %d (train.min_steps_per_epoch=%d over %d rows)",
                task.phase,
                global_batch,
                cfg.train.min_steps_per_epoch,
                rows,
            )
        batch = D.per_rank_batch(global_batch, self.dist)
        sampler: Any
        batches: Any
        if cfg.data.sampler == "pk":
            labels = self.bench.labels[task.train_rows]
            sampler = batches = PKBatchSampler(
                labels, batch, cfg.data.pk_images, cfg.train.seed + 7919 * self.dist.rank
            )
        else:
            sampler = EpochShuffle(
                len(task.train_rows), cfg.train.seed, self.dist.rank, self.dist.world_size
            )
            batches = BatchSampler(sampler, batch, drop_last=len(sampler) > batch)
        reader = RowBatches(
            self.data_path,
            task.train_rows,
            self.bench.labels,
            batches,
            self.device,
            cache=self.cache,
            num_workers=cfg.data.num_workers,
            persistent=True,
        )
        return reader, sampler

    def _train_epoch(
        self,
        net: torch.nn.Module,
        model: ZSLModel,
        optimizer: torch.optim.Optimizer,
        criterion: ModelLoss,
        loader: RowBatches,
        sampler: Any,
        task: Task,
        epoch: int,
        epochs: int,
        average: WeightAverage | None = None,
    ) -> dict[str, Any]:
        cfg, dev = self.cfg, self.device
        sampler.set_epoch(epoch)
        torch.manual_seed(
            epoch_seed(cfg.train.seed, epoch, self.dist.rank)
        )  # dropout of this epoch
        net.train()
        steps = (
            len(loader)
            if cfg.train.max_steps_per_epoch <= 0
            else min(len(loader), cfg.train.max_steps_per_epoch)
        )
        # per-step losses and term sums stay on the device (float64, so the epoch means equal
        # a sum of Python floats); on CUDA they are read once per epoch, never per step
        step_losses = torch.zeros(steps, dtype=torch.float64, device=dev)
        sums: dict[str, torch.Tensor] = {}
        check_each_step = dev.type != "cuda"  # reading a CPU scalar costs nothing
        seen_samples, done, start = 0, 0, time.perf_counter()
        # time spent waiting for batches (reading, copying): on the CPU only, where a step has
        # finished when it returns; on CUDA a batch's copy waits for the previous step's kernels
        waited, ready = 0.0, start
        bar = tqdm(
            total=steps,
            desc=f"{task.phase} epoch {epoch}/{epochs}",
            unit="step",
            leave=False,
            disable=None if self.dist.is_main else True,
        )
        for step, (x, y) in enumerate(loader):
            waited += time.perf_counter() - ready
            if step >= steps:
                break
            with autocast(dev, self.precision):
                out = net(x)
            loss, terms = criterion(out, y, epoch - 1)
            step_losses[step] = loss.detach()
            if check_each_step and not math.isfinite(float(step_losses[step])):
                raise TrainingDiverged(
                    f"non-finite loss at {task.phase} epoch {epoch} step {step}: "
                    f"{ {k: float(v) for k, v in terms.items()} }"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.train.warmup_steps > 0:
                set_warmup_lr(optimizer, cfg.train, (epoch - 1) * steps + step)
            optimizer.step()
            if average is not None:
                average.update(model)
            for k, v in [*terms.items(), ("total", step_losses[step])]:
                sums[k] = sums[k] + v.double() if k in sums else v.double()
            seen_samples += len(y)
            done += 1
            bar.update(1)
            if check_each_step or step % 50 == 0:
                bar.set_postfix(loss=f"{float(step_losses[step]):.3f}")
            ready = time.perf_counter()
        bar.close()
        bad = torch.nonzero(~torch.isfinite(step_losses[:done])).flatten().tolist()
        if bad:  # CUDA: found at the end of the epoch, before anything of it is saved
            raise TrainingDiverged(f"non-finite loss at {task.phase} epoch {epoch} step {bad[0]}")
        means = {k: float(v) / max(1, steps) for k, v in sums.items()}
        elapsed = time.perf_counter() - start
        losses = D.all_reduce_mean(self.dist, means, dev)
        return {
            "phase": task.phase,
            "epoch": epoch,
            "loss": losses,
            "train_seconds": round(elapsed, 3),
            **({"data_seconds": round(waited, 3)} if check_each_step else {}),  # CPU only
            "samples_per_s": round(seen_samples * self.dist.world_size / max(elapsed, 1e-9), 1),
        }

    def _evaluate(
        self, model: ZSLModel, task: Task, gamma: float
    ) -> tuple[dict[str, Any], tuple[Outputs, Outputs]]:
        """The epoch's metrics, and the (seen, unseen) outputs they were computed from."""
        cfg, b = self.cfg, self.bench
        play = np.concatenate([task.seen, task.unseen])
        classes = None if len(play) == b.num_classes else play
        common: dict[str, Any] = {
            "device": self.device,
            "batch_size": cfg.eval.batch_size,
            "precision": self.precision,
            "classes": classes,
            "cache": self.cache,
        }
        seen_out = collect_outputs(model, self.data_path, task.eval_seen, b.labels, **common)
        unseen_out = collect_outputs(model, self.data_path, task.eval_unseen, b.labels, **common)
        metrics: dict[str, Any] = zsl_metrics(
            seen_out, unseen_out, task.seen, task.unseen, gamma, self._opinion(task.phase)
        )
        if task.phase == "val" and cfg.train.select_mu:
            metrics["mu_curve"] = mu_curve(
                seen_out, unseen_out, task.seen, task.unseen, cfg.model.mu
            )
        if seen_out.vacuity is not None and unseen_out.vacuity is not None:  # evidential models
            for split, u in (("seen", seen_out.vacuity), ("unseen", unseen_out.vacuity)):
                metrics[f"vacuity_hist_{split}"] = vacuity_histogram(u).tolist()
            metrics["vacuity_hist_edges"] = [round(float(e), 6) for e in VACUITY_EDGES]
        metrics["eval_split"] = task.eval_split
        return metrics, (seen_out, unseen_out)

    def _checkpoint(
        self,
        model: ZSLModel,
        optimizer: torch.optim.Optimizer,
        task: Task,
        epoch: int,
        entry: dict[str, Any],
        average: WeightAverage | None = None,
        trained: ZSLModel | None = None,
    ) -> None:
        state = {
            "model": model.state_dict(),  # the reported weights (the average, if one is kept)
            "optimizer": optimizer.state_dict(),
            "epoch": epoch,
            "phase": task.phase,
            "config": self.cfg.to_dict(),
            "history": self.history,
            "selection_state": self.selection_state,
            "seen_classes": task.seen.tolist(),
            "unseen_classes": task.unseen.tolist(),
            "data": str(self.data_path),
            "class_side": self._class_side,
        }
        if average is not None and trained is not None:  # what a resumed run goes on from
            state["trained_model"] = trained.state_dict()
            state["weight_average"] = average.state()
        folder = self.folder
        save_checkpoint(folder.last_checkpoint, state)
        # the kept checkpoints follow the rule selection reports by (crest.engine.selection):
        # a later epoch replaces the kept one only when it scores strictly higher
        if (
            task.phase == "val"
            and Key.BEST_H in entry
            and improves(entry, self._earlier(entry, "val", Key.BEST_H), val_score)
        ):
            save_checkpoint(folder.best_val_checkpoint, state)
        if task.phase == "final" and self.cfg.train.selection == "test-oracle" and Key.H in entry:
            earlier = self._earlier(entry, "final", Key.H)
            for metric in ("h", "czsl"):
                if improves(entry, earlier, oracle_score(metric)):
                    save_checkpoint(folder.oracle_checkpoint(metric), state)

    def _earlier(self, entry: dict[str, Any], phase: str, key: str) -> list[dict[str, Any]]:
        """The evaluated epochs of ``phase`` before ``entry``."""
        return [e for e in self.history if e.get("phase") == phase and key in e and e is not entry]


def _epoch_line(entry: dict[str, Any], epochs: int) -> str:
    text = f"[{entry['phase']}] epoch {entry['epoch']}/{epochs} loss {entry['loss'].get('total', float('nan')):.4f}"
    if Key.CZSL in entry:
        pct = {k: 100 * entry[k] for k in (Key.CZSL, Key.U, Key.S, Key.H)}
        text += (
            f" | {entry['eval_split']}: CZSL {pct[Key.CZSL]:.1f} U {pct[Key.U]:.1f} S {pct[Key.S]:.1f}"
            f" H {pct[Key.H]:.1f} (γ={entry[Key.GAMMA]:.2f}) confidence: AUROC"
            f" {entry[Key.AUROC_ERROR]:.2f} ECE {100 * entry[Key.ECE]:.1f}% | p_unseen: AUROC"
            f" {entry[Key.AUROC_UNSEEN]:.2f}"
        )
    return text + f" | {entry['samples_per_s']:.0f} samples/s"


def train(
    cfg: Config, out_dir: str | Path, resume: bool = False, on_epoch: EpochHook | None = None
) -> dict[str, Any]:
    """Train ``cfg.model.name`` as configured; returns the metrics written to ``out_dir/metrics.json``.
    ``on_epoch`` sees every epoch's history entry once it is saved (:data:`EpochHook`)."""
    return Trainer(cfg, out_dir, resume=resume, on_epoch=on_epoch).run()
