"""What `--resume` may do: continue a run exactly as it was configured, or extend a finished
`final` run to more epochs. Anything else would silently mix two configurations in one folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from crest.config import Config, config_from_dict, read_yaml
from crest.engine.checkpoint import load_checkpoint
from crest.errors import CrestError
from crest.run_folder import RunFolder

#: the one key --resume may change, and only upwards
EXTENSIBLE = "train.epochs"


#: switches added after runs were saved without them, and the behaviour those runs had
LEGACY = {
    ("loss", "branch_supervision"): 0.0,
    ("train", "select_mu"): False,
    ("model", "center_attribute_vectors"): False,
    ("model", "shared_front"): True,
}


def saved_config(data: Any, source: Path) -> Config:
    """A saved config; keys it predates keep the behaviour the run was trained with."""
    if not isinstance(data, dict):
        raise CrestError(f"{source}: expected a mapping of config sections")
    data = {k: dict(v) if isinstance(v, dict) else v for k, v in data.items()}
    for (section, key), old in LEGACY.items():
        if isinstance(data.get(section), dict) and key not in data[section]:
            data[section][key] = old
    return config_from_dict(data)


def saved_run(root: Path) -> tuple[Config, dict[str, Any] | None]:
    """The folder's configuration and its last checkpoint (None when the run was killed before
    its first checkpoint: then ``config.yaml`` is what it was started with)."""
    folder = RunFolder(root)
    last = folder.last_checkpoint
    if last.exists():
        state = load_checkpoint(last)
        return saved_config(state["config"], last), state
    if folder.config_file.exists():
        return saved_config(read_yaml(folder.config_file), folder.config_file), None
    raise CrestError(
        f"{root}: nothing to resume (no {folder.last_checkpoint.relative_to(root)} and no "
        f"{RunFolder.CONFIG}); "
        "start a new run without --resume"
    )


def folder_config(root: Path) -> Config:
    """The folder's config without loading its checkpoint: ``config.yaml`` (written at every
    start, and again when validation chose μ), else the checkpoint's. The trainer compares it
    with the checkpoint's own when it resumes."""
    config_file = RunFolder(root).config_file
    if config_file.exists():
        return saved_config(read_yaml(config_file), config_file)
    return saved_run(root)[0]


def _flat(cfg: Config) -> dict[str, Any]:
    out = {}
    for section, values in cfg.to_dict().items():
        if isinstance(values, dict):
            out.update({f"{section}.{k}": v for k, v in values.items()})
    return out


def resumed_config(root: Path, requested: Config) -> tuple[Config, dict[str, Any] | None]:
    """The configuration a resumed run continues with; refuses a ``requested`` one that differs
    from the saved run in anything but a longer ``train.epochs``."""
    saved, state = saved_run(root)
    ignore = {EXTENSIBLE}
    if state is not None and state.get("selection_state", {}).get("val_mu") is not None:
        ignore.add("model.score_mu")  # validation chose it: the saved value is the run's own
    want, have = _flat(requested), _flat(saved)
    changed = sorted(k for k in want if k not in ignore and want[k] != have.get(k))
    if changed:
        detail = ", ".join(f"{k}={want[k]!r} (run: {have.get(k)!r})" for k in changed[:4])
        raise CrestError(
            f"{root}: --resume continues the run as it was configured; refusing to change {detail}. "
            f"Only {EXTENSIBLE} may grow; start a new run for anything else"
        )
    epochs, done = requested.train.epochs, saved.train.epochs
    if epochs != done:
        if epochs < done:
            raise CrestError(
                f"{root}: {EXTENSIBLE}={epochs} is fewer than the run's {done}; resume cannot shorten a run"
            )
        if saved.train.selection == "val":
            raise CrestError(
                f"{root}: {EXTENSIBLE} cannot be extended under selection val (the final phase's "
                "length was chosen on validation); start a new run"
            )
        saved.train.epochs = epochs
    return saved, state
