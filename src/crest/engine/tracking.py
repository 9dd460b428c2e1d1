"""Experiment tracking (``train.logger``): every per-epoch number of metrics.jsonl, loss terms
included, sent to TensorBoard or Weights & Biases. metrics.jsonl stays the record; a tracker is
a view of it, written by rank 0 only."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator
from typing import Any, Protocol

from crest.errors import ConfigError
from crest.run_folder import RunFolder

log = logging.getLogger(__name__)
WANDB_HOST = ("api.wandb.ai", 443)


class Tracker(Protocol):
    def log(self, entry: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


def scalars(entry: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, float]]:
    """The numbers of a history entry as ``name/with/slashes`` → value (lists, strings skipped)."""
    for key, value in entry.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from scalars(value, f"{name}/")
        elif isinstance(value, bool):
            continue
        elif isinstance(value, int | float):
            yield name, float(value)


def _tag(entry: dict[str, Any], name: str) -> str:
    return f"{entry.get('phase', 'train')}/{name}"  # the validation and final phases apart


class NoTracker:
    def log(self, entry: dict[str, Any]) -> None:
        pass

    def close(self) -> None:
        pass


class TensorBoardTracker:
    def __init__(self, folder: RunFolder) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:
            raise ConfigError(
                "train.logger=tensorboard needs the tensorboard package: "
                "pip install 'crest-zsl[tensorboard]'"
            ) from exc
        self.writer = SummaryWriter(log_dir=str(folder.tensorboard))

    def log(self, entry: dict[str, Any]) -> None:
        step = int(entry.get("epoch", 0))
        for name, value in scalars(entry):
            if name not in ("epoch",):
                self.writer.add_scalar(_tag(entry, name), value, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def _online() -> bool:
    try:
        with socket.create_connection(WANDB_HOST, timeout=2):
            return True
    except OSError:
        return False


class WandbTracker:
    def __init__(self, folder: RunFolder, config: dict[str, Any]) -> None:
        try:
            import wandb
        except ImportError as exc:
            raise ConfigError(
                "train.logger=wandb needs the wandb package: pip install 'crest-zsl[wandb]'"
            ) from exc
        mode = os.environ.get("WANDB_MODE") or ("online" if _online() else "offline")
        if mode == "offline":
            log.info(
                "wandb: no connection to %s; logging offline into %s", WANDB_HOST[0], folder.wandb
            )
        folder.wandb.mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(
            project=os.environ.get("WANDB_PROJECT", "crest"),
            name=folder.root.name,
            dir=str(folder.root),
            config=config,
            mode=mode,
        )

    def log(self, entry: dict[str, Any]) -> None:
        numbers = {_tag(entry, k): v for k, v in scalars(entry) if k != "epoch"}
        self.run.log(numbers | {"epoch": entry.get("epoch", 0)})

    def close(self) -> None:
        self.run.finish()


def open_tracker(kind: str, folder: RunFolder, config: dict[str, Any]) -> Tracker:
    if kind == "tensorboard":
        return TensorBoardTracker(folder)
    if kind == "wandb":
        return WandbTracker(folder, config)
    return NoTracker()
