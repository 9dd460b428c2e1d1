"""Whole epochs, measured: training plus evaluation on a benchmark file under each
``data.cache`` mode, and the time a full run would take projected from them.

A step benchmark misses what a run spends around the step (reading features, the DataLoader,
evaluation, host copies); this runs the real trainer on a real file, so all of it is counted.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
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
                f"data.cache={mode}",
                f"train.epochs={epochs}",
                "train.selection=final",
                "train.eval_every=1",
                *(overrides or []),
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
