"""The run folder: resolved config, environment facts, metrics.jsonl / metrics.json, checkpoints."""

from __future__ import annotations

import json
import platform
import subprocess
from pathlib import Path
from typing import Any

import torch

from crest import __version__
from crest.atomic import write_text_atomic
from crest.config import Config, dump_config


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
    return {
        "crest_version": __version__,
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
    """One folder per run; every file written atomically (metrics.jsonl is rewritten whole)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.checkpoints = self.root / "checkpoints"

    def prepare(self, cfg: Config, device: torch.device) -> None:
        self.checkpoints.mkdir(parents=True, exist_ok=True)
        write_text_atomic(self.root / "config.yaml", dump_config(cfg))
        write_text_atomic(self.root / "env.json", json.dumps(environment(device), indent=2))

    def read_history(self) -> list[dict[str, Any]]:
        path = self.root / "metrics.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def write_history(self, history: list[dict[str, Any]]) -> None:
        text = "".join(json.dumps(entry) + "\n" for entry in history)
        write_text_atomic(self.root / "metrics.jsonl", text)

    def write_metrics(self, metrics: dict[str, Any]) -> None:
        write_text_atomic(self.root / "metrics.json", json.dumps(metrics, indent=2))

    def write_json(self, name: str, obj: Any) -> None:
        write_text_atomic(self.root / name, json.dumps(obj, indent=2))
