"""Semi-real worlds: the synthetic renderer on a real class side (`crest data synth --like CUB`).

The real class attribute matrix, class and attribute names, seen/unseen split, per-class image
counts (from ``images.csv``, optionally capped) and attribute word vectors are kept exactly;
only the feature maps are synthetic. Each attribute is mapped to a (part, value) pair from its
name: ``has_wing_color::red`` → group ``has_wing_color`` (placed on a spatial part) and value
``red`` (shared with every other group that has a ``red``). Names without ``::`` (SUN, AWA2) are
their own group and value. No per-dataset code: the rule is the same for every dataset.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from crest.data.sources.attribute_names import attribute_names_for
from crest.data.sources.attribute_vectors import load_attribute_vectors
from crest.data.sources.xlsa17 import attribute_vectors_file, load_xlsa17
from crest.data.synthetic.generator import WorldDesign, WorldSpec
from crest.errors import DataError


def attribute_layout(names: list[str], parts: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(part of each attribute, value of each attribute, number of values) from attribute names."""
    groups: dict[str, int] = {}
    values: dict[str, int] = {}
    part_of, value_of = [], []
    for name in names:
        group, _, value = name.partition("::")
        value = value or name
        part_of.append(groups.setdefault(group, len(groups)) % parts)
        value_of.append(values.setdefault(value, len(values)))
    return np.asarray(part_of), np.asarray(value_of), len(values)


def probabilities_from_original(original_att: np.ndarray) -> np.ndarray:
    """Per-class attribute probabilities from a raw class matrix (percentages, [0, 1] or AWA2's -1..100)."""
    x = np.clip(original_att.astype(np.float64), 0.0, None)
    top = x.max()
    if top > 1.0:
        x = x / (100.0 if top <= 100.0 else top)
    return np.clip(x, 0.0, 1.0)


def _choose_rows(
    labels: np.ndarray, group: np.ndarray, cap: int | None, rng: np.random.Generator
) -> np.ndarray:
    """At most ``cap`` rows per class, stratified by ``group`` (the split of each row), each group kept."""
    if cap is None:
        return np.arange(len(labels))
    keep = []
    for c in np.unique(labels):
        rows = np.flatnonzero(labels == c)
        if len(rows) <= cap:
            keep.append(rows)
            continue
        for g in np.unique(group[rows]):
            members = rows[group[rows] == g]
            k = max(1, round(cap * len(members) / len(rows)))
            keep.append(rng.choice(members, size=min(k, len(members)), replace=False))
    return np.unique(np.concatenate(keep))


def like_datasets(xlsa17_root: str | Path, attributes_root: str | Path) -> list[str]:
    """The datasets a --like world can be built on: an xlsa17 folder with att_splits.mat and
    images.csv (per-image labels) and a folder of attribute vectors."""
    root, attrs = Path(xlsa17_root), Path(attributes_root)
    if not root.is_dir():
        return []
    return sorted(
        d.name
        for d in root.iterdir()
        if (d / "att_splits.mat").exists()
        and (d / "images.csv").exists()
        and (attrs / d.name).is_dir()
    )


def resolve_like(dataset: str, xlsa17_root: str | Path, attributes_root: str | Path) -> str:
    """``dataset`` as its folder is spelled (case-insensitive), or a DataError naming the choices."""
    usable = like_datasets(xlsa17_root, attributes_root)
    for name in usable:
        if name.lower() == dataset.lower():
            return name
    present = (
        sorted(d.name for d in Path(xlsa17_root).iterdir()) if Path(xlsa17_root).is_dir() else []
    )
    lacking = [d for d in present if d not in usable]
    raise DataError(
        Path(xlsa17_root),
        "--like",
        f"'{dataset}' cannot be used; expected one of {', '.join(usable) or '(none found)'}"
        + (
            f" ({', '.join(lacking)} lack images.csv or attribute vectors: no per-image labels)"
            if lacking
            else ""
        ),
    )


def like_design(
    dataset: str, xlsa17_root: str | Path, attributes_root: str | Path, spec: WorldSpec
) -> WorldDesign:
    """A world design on the real class side of ``dataset`` (CUB, SUN, AWA2, ...)."""
    dataset = resolve_like(dataset, xlsa17_root, attributes_root)
    side = load_xlsa17(Path(xlsa17_root) / dataset, dataset)
    if side.labels is None:
        raise DataError(
            Path(xlsa17_root) / dataset,
            "images.csv",
            "missing; a --like world needs per-image labels",
        )
    attr_folder = Path(attributes_root) / dataset
    names = attribute_names_for(attr_folder, dataset, side.num_attributes)
    w2v = load_attribute_vectors(attribute_vectors_file(attr_folder, dataset), side.num_attributes)
    rng = np.random.default_rng([spec.seed, 4])
    group = np.full(len(side.labels), -1, dtype=np.int64)  # which split each real row belongs to
    for g, key in enumerate(("trainval", "test_seen", "test_unseen")):
        group[side.locs[key]] = g
    rows = _choose_rows(side.labels, group, spec.image_cap, rng)
    position = np.full(len(side.labels), -1, dtype=np.int64)
    position[rows] = np.arange(len(rows))

    def remap(locs: np.ndarray) -> np.ndarray:
        kept = position[locs]
        return np.sort(kept[kept >= 0])

    splits = {k: remap(side.locs[k]) for k in ("trainval", "test_seen", "test_unseen")}
    clean = side.clean_val_locs()
    if clean is not None:
        splits.update({k: remap(v) for k, v in clean.items()})
    part_of, value_of, n_values = attribute_layout(names, spec.parts)
    return WorldDesign(
        probs=probabilities_from_original(side.original_att),
        attribute_part=part_of,
        attribute_value=value_of,
        num_parts=spec.parts,
        num_values=n_values,
        class_names=side.class_names,
        attribute_names=names,
        w2v=w2v,
        labels=side.labels[rows],
        splits=splits,
        att=side.att,
        original_att=side.original_att,
        image_files=[side.image_files[i] for i in rows] if side.image_files else None,
        meta={"like": dataset},
    )
