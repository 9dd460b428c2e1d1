"""`crest data info` and `crest data synth`."""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path
from typing import Any

from crest.cli import embed_cmd, extract_cmd, stats_cmd
from crest.cli.output import print_json, print_summary
from crest.data.schema.hdf5 import read_benchmark
from crest.data.synthetic.generator import WorldSpec
from crest.data.synthetic.worlds import build_world
from crest.errors import DataError


def register(sub: Any) -> None:
    data = sub.add_parser("data", help="benchmark files: inspect, generate").add_subparsers(
        dest="data_command", required=True
    )

    info = data.add_parser("info", help="summary of a benchmark HDF5 file")
    info.add_argument("file", type=Path)
    info.add_argument("--json", action="store_true", help="print the summary as JSON")
    info.add_argument(
        "--check-features",
        action="store_true",
        help="read every feature row (with progress) and fail at the first NaN/inf one",
    )
    info.set_defaults(func=cmd_info)

    synth = data.add_parser(
        "synth", help="generate a synthetic world (default) or a semi-real one (--like)"
    )
    synth.add_argument(
        "--like",
        metavar="DATASET",
        help="keep the real class side of DATASET (CUB, SUN, AWA2, ...)",
    )
    synth.add_argument(
        "--xlsa17", type=Path, help="xlsa17 root folder (default: $CREST_DATA/xlsa17)"
    )
    synth.add_argument(
        "--attributes", type=Path, help="attributes root folder (default: $CREST_DATA/attributes)"
    )
    synth.add_argument(
        "--out", type=Path, help="output file (default: a cache file named by the world's settings)"
    )
    synth.add_argument(
        "--overwrite", action="store_true", help="regenerate even if the output exists"
    )
    defaults = WorldSpec()
    for f in fields(WorldSpec):
        flag = "--" + f.name.replace("_", "-")
        default = getattr(defaults, f.name)
        kind = type(default) if default is not None else int
        synth.add_argument(flag, type=kind, default=default, help=f"(default: {default})")
    synth.set_defaults(func=cmd_synth)

    for command in (extract_cmd, embed_cmd, stats_cmd):  # `crest data <command>`
        command.register(data)


def cmd_info(args: argparse.Namespace) -> int:
    summary = read_benchmark(args.file).summary()
    if args.check_features:
        from crest.data.schema.scan import first_nonfinite_row

        bad = first_nonfinite_row(args.file)
        if bad is not None:
            raise DataError(
                args.file,
                "feature_map",
                f"row {bad} holds NaN/inf values; expected finite features in every row",
            )
        summary["features_checked"] = "every row finite"
    else:
        # the summary reads the class side only: say so, lest exit 0 pass for clean features
        summary["features_checked"] = (
            "feature rows not read (NaN/inf rows would go unnoticed); --check-features reads "
            "every row"
        )
    if args.json:
        print_json(summary)
    else:
        print_summary(summary)
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    spec = WorldSpec(**{f.name: getattr(args, f.name) for f in fields(WorldSpec)})
    path = build_world(
        spec,
        out=args.out,
        like=args.like,
        xlsa17=args.xlsa17,
        attributes=args.attributes,
        overwrite=args.overwrite,
    )
    print_summary(read_benchmark(path).summary())
    return 0
