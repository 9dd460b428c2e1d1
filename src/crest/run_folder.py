"""The run folder: resolved config, environment facts, metrics.jsonl / metrics.json, checkpoints."""

from __future__ import annotations

import json
import platform
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crest.atomic import write_text_atomic
from crest.config import Config, dump_config
from crest.errors import DataError
from crest.version import package_version

if TYPE_CHECKING:  # torch is imported where it is used: `crest train` checks its run folder's
    # lock (crest.run_lock → here) before any heavy import, to fail at once on a busy folder
    import torch


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def environment(device: torch.device) -> dict[str, Any]:
    import torch

    return {
        "crest_version": package_version(),
        "git_commit": git_commit(),
        "torch_version": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor(),
        "cpu_threads": torch.get_num_threads(),
    }


class RunFolder:
    """One folder per run, and the one owner of its layout: every path of a run folder comes
    from here. Files are written atomically (metrics.jsonl is rewritten whole)."""

    CONFIG = "config.yaml"  # the resolved config the run trains with
    ENVIRONMENT = "env.json"
    HISTORY = "metrics.jsonl"  # one entry per epoch
    METRICS = "metrics.json"  # the reported numbers
    REPORT = "report.md"
    VAL_SELECTION = "val_selection.json"  # epoch, γ and μ chosen on validation
    FIGURES = "figures"
    CHECKPOINTS = "checkpoints"
    TENSORBOARD = "tensorboard"  # train.logger=tensorboard
    WANDB = "wandb"  # train.logger=wandb
    LAST = "last.pt"  # every epoch: what --resume continues from
    BEST_VAL = "best_val.pt"  # the epoch validation chooses
    ORACLE = "best_{metric}_test_oracle.pt"  # test-oracle selection, metric h or czsl

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.checkpoints = self.root / self.CHECKPOINTS
        self.config_file = self.root / self.CONFIG
        self.history_file = self.root / self.HISTORY
        self.metrics_file = self.root / self.METRICS
        self.report_file = self.root / self.REPORT
        self.figures = self.root / self.FIGURES
        self.tensorboard = self.root / self.TENSORBOARD
        self.wandb = self.root / self.WANDB
        self.last_checkpoint = self.checkpoints / self.LAST
        self.best_val_checkpoint = self.checkpoints / self.BEST_VAL

    def oracle_checkpoint(self, metric: str) -> Path:
        """The test-oracle checkpoint of ``metric`` (``h`` or ``czsl``)."""
        return self.checkpoints / self.ORACLE.format(metric=metric)

    def reported_checkpoint(self, selection: str) -> Path:
        """The checkpoint a finished run's reported numbers come from."""
        oracle = self.oracle_checkpoint("h")
        if selection == "test-oracle" and oracle.exists():
            return oracle
        return self.last_checkpoint

    def is_finished(self) -> bool:
        return self.metrics_file.exists()

    def prepare(self, cfg: Config, device: torch.device) -> None:
        self.checkpoints.mkdir(parents=True, exist_ok=True)
        write_text_atomic(self.config_file, dump_config(cfg))
        write_text_atomic(self.root / self.ENVIRONMENT, json.dumps(environment(device), indent=2))

    def read_history(self) -> list[dict[str, Any]]:
        if not self.history_file.exists():
            return []
        lines = self.history_file.read_text().splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def write_history(self, history: list[dict[str, Any]]) -> None:
        text = "".join(json.dumps(entry) + "\n" for entry in history)
        write_text_atomic(self.history_file, text)

    def read_metrics(self) -> dict[str, Any]:
        return dict(json.loads(self.metrics_file.read_text()))

    def write_metrics(self, metrics: dict[str, Any]) -> None:
        write_text_atomic(self.metrics_file, json.dumps(metrics, indent=2))

    def write_val_selection(self, selection: dict[str, Any]) -> None:
        write_text_atomic(self.root / self.VAL_SELECTION, json.dumps(selection, indent=2))

    def temporaries(self) -> list[Path]:
        """crest.atomic's ``.NAME.*.tmp`` files of the folder and its checkpoints."""
        return [*self.root.glob(".*.tmp"), *self.checkpoints.glob(".*.tmp")]


def refuse_validation_only(root: Path, metrics: dict[str, Any]) -> None:
    """A ``train.validation_only`` run has no reported model (only the validation-phase one,
    trained without the validation classes): explain, export and compare refuse it."""
    if metrics.get("validation_only"):
        raise DataError(
            root,
            "metrics.json",
            "a validation-only run (train.validation_only=true) has no reported model; train "
            "the full protocol (train.selection=val) to explain or export one",
        )
