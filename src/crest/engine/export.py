"""Share a trained model without pickle: ``model.safetensors`` (the weights, and the arrays of the
class side under ``class_side.*``) and ``config.json`` (the config, the data file, the selection,
the classes it was trained on and the rest of the class side: names, feature shape, settings).

The exported folder loads wherever a checkpoint does (:func:`crest.engine.checkpoint.load_model`,
``crest.load``, ``crest predict``, ``crest eval``), and gives the same predictions.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from crest.data.schema.class_side import split_arrays
from crest.errors import DataError
from crest.run_folder import RunFolder, refuse_validation_only
from crest.version import package_version

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
#: checkpoint entries that an exported model keeps (the optimizer and the history stay behind)
#: the prefix of the class side's arrays among the weights
SIDE = "class_side."
KEPT = ("config", "epoch", "phase", "selection_state", "seen_classes", "unseen_classes", "data")


def is_export(path: str | Path) -> bool:
    path = Path(path)
    return path.is_dir() and (path / WEIGHTS).is_file() and (path / CONFIG).is_file()


def export_state(state: dict[str, Any], out: str | Path) -> Path:
    """Write ``state`` (a loaded checkpoint) as an exported folder, atomically (a temporary
    folder beside ``out``, renamed)."""
    out = Path(out)
    if out.exists():
        raise DataError(out, None, "already exists; choose a new folder to export into")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        weights = {k: v.detach().cpu().contiguous() for k, v in state["model"].items()}
        meta = {k: state[k] for k in KEPT if k in state}
        if "class_side" in state:
            arrays, meta["class_side"] = split_arrays(state["class_side"])
            weights |= {f"{SIDE}{k}": v.contiguous() for k, v in arrays.items()}
        save_file(weights, str(tmp / WEIGHTS), metadata={"format": "pt"})
        meta["crest_version"] = package_version()
        (tmp / CONFIG).write_text(json.dumps(meta, indent=2))
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def load_export(folder: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """An exported folder as a checkpoint-like state: ``model`` (the weights) plus ``config.json``."""
    folder = Path(folder)
    try:
        meta = json.loads((folder / CONFIG).read_text())
        weights = load_file(str(folder / WEIGHTS), device=str(map_location))
    except Exception as exc:  # OSError, JSON's ValueError, safetensors' own SafetensorError
        raise DataError(folder, None, f"not a readable crest export: {exc}") from exc
    if not isinstance(meta, dict) or "config" not in meta:
        raise DataError(folder / CONFIG, "config", "missing; not a crest export")
    side = {k.removeprefix(SIDE): v for k, v in weights.items() if k.startswith(SIDE)}
    model = {k: v for k, v in weights.items() if not k.startswith(SIDE)}
    if side and isinstance(meta.get("class_side"), dict):
        meta["class_side"] = {**meta["class_side"], **side}
    return {**meta, "model": model}


def checkpoint_to_export(source: str | Path) -> Path:
    """The checkpoint a run folder reports from, or ``source`` itself when it is a file."""
    source = Path(source)
    if source.is_dir():
        run = RunFolder(source)
        metrics = run.read_metrics() if run.is_finished() else {}
        refuse_validation_only(run.root, metrics)
        selection = metrics.get("selection", "final")
        return run.reported_checkpoint(str(selection))
    return source
