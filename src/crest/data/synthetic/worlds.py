"""Where generated worlds live: a cache file per spec, generated on first use."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

from crest.data.synthetic.generator import WorldSpec, generate_default_world, write_world
from crest.data.synthetic.like import like_design
from crest.paths import cache_dir, data_root


def world_path(spec: WorldSpec, like: str | None = None) -> Path:
    """The cache file of a world: the WorldSpec's hash in the name, so changed knobs never reuse a file."""
    key = json.dumps({"like": like, **asdict(spec)}, sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:10]
    name = f"{(like or 'default').lower()}-seed{spec.seed}-{digest}.h5"
    return cache_dir() / "worlds" / name


def build_world(
    spec: WorldSpec,
    out: str | Path | None = None,
    like: str | None = None,
    xlsa17: str | Path | None = None,
    attributes: str | Path | None = None,
    overwrite: bool = False,
) -> Path:
    """Generate a world into ``out`` (default: the cache); an existing complete file is reused."""
    path = Path(out) if out is not None else world_path(spec, like)
    if path.exists() and not overwrite:
        return path
    if like is None:
        return generate_default_world(path, spec)
    design = like_design(
        like,
        xlsa17 if xlsa17 is not None else data_root() / "xlsa17",
        attributes if attributes is not None else data_root() / "attributes",
        spec,
    )
    return write_world(design, spec, path, kind="like")


def default_world() -> Path:
    """The embedded default world, generated into the cache on first use."""
    return build_world(WorldSpec())
