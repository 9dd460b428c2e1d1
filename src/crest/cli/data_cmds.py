"""`crest data info` and `crest data synth`."""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path
from typing import Any

from crest.cli.embed_cmd import add_embed_parser
from crest.cli.extract_cmd import add_extract_parser
from crest.cli.output import human_bytes, print_json
from crest.cli.stats_cmd import add_stats_parser
from crest.data.h5 import read_benchmark
from crest.data.synthetic import WorldSpec
from crest.data.worlds import build_world


def register(sub: Any) -> None:
    data = sub.add_parser("data", help="benchmark files: inspect, generate").add_subparsers(
        dest="data_command", required=True
    )

    info = data.add_parser("info", help="summary of a benchmark HDF5 file")
    info.add_argument("file", type=Path)
    info.add_argument("--json", action="store_true", help="print the summary as JSON")
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
        "--out", type=Path, help="output file (default: a cache file named by the spec)"
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

    add_extract_parser(data)
    add_embed_parser(data)
    add_stats_parser(data)


def print_summary(summary: dict[str, Any]) -> None:
    cls = summary["classes"]
    print(f"file        {summary['file']}")
    if "file_size_bytes" in summary:
        print(f"size        {human_bytes(summary['file_size_bytes'])}")
    print(f"classes     {cls['all']} (seen {cls['seen']}, unseen {cls['unseen']})")
    print(f"attributes  {summary['attributes']} (word vectors {summary['word_vector_dim']}-d)")
    print(f"images      {summary['images']}")
    print("splits      " + ", ".join(f"{k} {v}" for k, v in summary["splits"].items()))
    if "features" in summary:
        feat = summary["features"]
        print(
            f"features    {feat['channels']} channels on a {feat['grid']} grid ({feat['regions']} regions), {feat['dtype']}"
        )
    print(f"ground truth attribute masks: {'yes' if summary['ground_truth_masks'] else 'no'}")
    meta = summary.get("meta", {})
    if "source" in meta:
        real = meta.get("features_real", True)
        print(
            f"source      {meta['source']}"
            + ("" if real else " (features are not real image features)")
        )


def cmd_info(args: argparse.Namespace) -> int:
    summary = read_benchmark(args.file).summary()
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
