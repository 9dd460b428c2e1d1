"""`crest data extract`: ResNet-101 feature maps of a dataset's images → a benchmark HDF5 file."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from crest.cli.output import print_summary
from crest.data.extraction.settings import DTYPES, RESIZE_MODES, ExtractSettings

EPILOG = """\
example (CUB, xlsa17 paths remapped to a local copy of the images):
  crest data extract --images xlsa17/CUB/images.csv --xlsa17 xlsa17/CUB \\
      --attributes attributes/CUB --image-root /data/CUB --out CUB_448.h5

A killed run leaves OUT.partial; rerunning the same command continues from the first
missing row. OUT appears only when every row is written.
"""


def register(data_sub: Any) -> None:
    """Add ``extract`` to the sub-parsers of ``crest data``."""
    d = ExtractSettings()
    p = data_sub.add_parser(
        "extract",
        help="ResNet-101 feature maps of a dataset's images (resumable)",
        description="Extract ResNet-101 layer4 feature maps (before pooling) for every image of "
        "a dataset, in xlsa17 row order, into a benchmark HDF5 file with the xlsa17 class side "
        "and the attribute word vectors.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--images",
        type=Path,
        help="image list: images.csv (image_file,label) or res101.mat "
        "(default: images.csv in the --xlsa17 folder)",
    )
    p.add_argument(
        "--xlsa17",
        type=Path,
        required=True,
        help="the dataset's xlsa17 folder (att_splits.mat, trainvalclasses.txt, testclasses.txt)",
    )
    p.add_argument(
        "--attributes",
        type=Path,
        help="the dataset's attributes folder (<DATASET>_attribute.pkl/.npy, attribute names) "
        "(default: $CREST_DATA/attributes/<DATASET>)",
    )
    p.add_argument("--w2v", type=Path, help="attribute word vectors file (.pkl or .npy)")
    p.add_argument("--dataset", help="dataset name (default: the --xlsa17 folder's name)")
    p.add_argument("--image-root", type=Path, help="folder that relative image paths start from")
    p.add_argument(
        "--remap",
        action="append",
        default=[],
        metavar="OLD=NEW",
        help="replace the leading path prefix OLD of listed images by NEW (repeatable; "
        "the first match applies)",
    )
    p.add_argument(
        "--size",
        type=int,
        default=d.size,
        help=f"input size in pixels: 448 → 14x14 grid, 224 → 7x7 (default: {d.size})",
    )
    p.add_argument(
        "--resize",
        choices=RESIZE_MODES,
        default=d.resize,
        help="crop: short side to SIZE then centre crop (the CREST/TransZero script); "
        f"stretch: squash to SIZE x SIZE (default: {d.resize})",
    )
    p.add_argument(
        "--weights",
        default=d.weights,
        help="imagenet (torchvision IMAGENET1K_V1), imagenet-v2, none (random: no real "
        f"features, marked so in the file) or a state_dict FILE (default: {d.weights})",
    )
    p.add_argument(
        "--seed", type=int, default=d.seed, help="seed of the random weights of --weights none"
    )
    p.add_argument("--dtype", choices=DTYPES, default=d.dtype, help="feature storage type")
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument(
        "--workers",
        type=int,
        default=min(d.workers, os.cpu_count() or 1),
        help="DataLoader worker processes that decode images",
    )
    p.add_argument("--device", default=d.device, help="auto (CUDA if available), cpu, cuda:N")
    p.add_argument("--bf16", action="store_true", help="bfloat16 autocast (CUDA only)")
    p.add_argument("--out", type=Path, required=True, help="output benchmark HDF5 file")
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUT")
    p.add_argument(
        "--restart", action="store_true", help="discard an unfinished OUT.partial and start over"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_extract)


def cmd_extract(args: argparse.Namespace) -> int:
    from crest.data.extraction.run import extract_benchmark
    from crest.data.schema.hdf5 import read_benchmark

    settings = ExtractSettings(
        size=args.size,
        resize=args.resize,
        weights=args.weights,
        seed=args.seed,
        dtype=args.dtype,
        batch_size=args.batch_size,
        workers=args.workers,
        device=args.device,
        bf16=args.bf16,
    )
    out = extract_benchmark(
        args.images or args.xlsa17 / "images.csv",
        args.xlsa17,
        args.out,
        settings=settings,
        attributes=args.attributes,
        w2v=args.w2v,
        dataset=args.dataset,
        image_root=args.image_root,
        remap=args.remap,
        overwrite=args.overwrite,
        restart=args.restart,
        progress=not args.no_progress,
    )
    print_summary(read_benchmark(out).summary())
    return 0
