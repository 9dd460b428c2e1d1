"""`crest data stats`: attribute frequency imbalance and co-occurrence of a dataset (Fig. 1)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from crest.errors import DataError
from crest.stats.attributes import (
    AttributeData,
    AttributeStats,
    compute_stats,
    load_benchmark_attributes,
    load_xlsa17_attributes,
)

_PRINTED_PAIRS = 5


def register(data_sub: Any) -> None:
    """Add ``stats`` to the ``crest data`` sub-commands."""
    p = data_sub.add_parser(
        "stats",
        help="attribute frequency imbalance and co-occurrence (figures, stats.md, stats.json)",
        description=(
            "Per-attribute frequency (class level from original_att; image level where the "
            "file stores image_attributes), imbalance (Gini, CV, max/min) and the most "
            "co-occurring attribute pairs. Give a benchmark file or --xlsa17 DIR."
        ),
    )
    p.add_argument("file", type=Path, nargs="?", help="benchmark HDF5 file")
    p.add_argument(
        "--xlsa17", type=Path, metavar="DIR", help="an xlsa17 dataset folder (att_splits.mat)"
    )
    p.add_argument(
        "--attributes",
        type=Path,
        metavar="DIR",
        help="attribute names folder for --xlsa17 (default: ../../attributes/NAME if present)",
    )
    p.add_argument(
        "--out", type=Path, metavar="DIR", help="output folder (default: <input stem>_stats/)"
    )
    p.add_argument("--top", type=int, default=15, help="co-occurring pairs to list (default: 15)")
    p.set_defaults(func=cmd_stats)


def _load(args: argparse.Namespace) -> AttributeData:
    if (args.file is None) == (args.xlsa17 is None):
        raise DataError(None, "input", "give exactly one of: a benchmark FILE, --xlsa17 DIR")
    if args.file is not None:
        if args.attributes is not None:
            raise DataError(args.file, "--attributes", "only used with --xlsa17")
        return load_benchmark_attributes(args.file)
    return load_xlsa17_attributes(args.xlsa17, args.attributes)


def print_stats(stats: AttributeStats, out_dir: Path) -> None:
    """Imbalance numbers per level and the top pairs."""
    print(f"dataset     {stats.data.dataset} ({stats.data.num_attributes} attributes)")
    for lv in stats.levels:
        imb = lv.imbalance
        print(
            f"{lv.level + ' level':<12}{lv.units} {lv.unit_noun}: Gini {imb.gini:.3f}, "
            f"CV {imb.cv:.3f}, max/min {imb.ratio_text()}, mean frequency {imb.mean:.3f}"
        )
        print(f"  top {min(_PRINTED_PAIRS, len(lv.pairs))} co-occurring pairs:")
        for i, pair in enumerate(lv.pairs[:_PRINTED_PAIRS], start=1):
            print(f"  {i}. {pair.value:.3f}  {pair.name_a}  +  {pair.name_b}")
    print(f"report      {out_dir / 'stats.md'}")


def cmd_stats(args: argparse.Namespace) -> int:
    if args.top < 1:
        raise DataError(None, "--top", f"got {args.top}; expected at least 1")
    data = _load(args)
    from crest.stats.report import default_out_dir, write_report  # matplotlib: only when drawing

    out_dir = args.out if args.out is not None else default_out_dir(data.source)
    stats = compute_stats(data, top=args.top)
    write_report(stats, out_dir)
    print_stats(stats, out_dir)
    return 0
