"""`crest predict CHECKPOINT` (a .pt file or a `crest export` folder): ranked classes, confidence, p_unseen, vacuity and supporting attributes for new inputs;
``--max-risk`` abstains where the decision is too likely wrong."""

from __future__ import annotations

import argparse
import csv
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from crest.atomic import write_text_atomic
from crest.class_files import read_class_file
from crest.data.schema.dataset import FeatureDataset
from crest.errors import DataError
from crest.predict import Prediction, load
from crest.safe_load import load_npy


def register(sub: Any) -> None:
    p = sub.add_parser(
        "predict", help="rank classes (yours too) for features or images with a trained CREST"
    )
    p.add_argument("checkpoint", type=Path)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--benchmark", type=Path, help="rows of a benchmark file (with --rows or --split)"
    )
    src.add_argument("--features", type=Path, help="a .npy of feature maps (N, D_v, h, w)")
    src.add_argument(
        "--images", type=Path, nargs="+", help="image files (features extracted as at training)"
    )
    p.add_argument("--rows", type=int, nargs="+", help="file rows of --benchmark")
    p.add_argument("--split", help="a split of --benchmark, e.g. test_unseen")
    p.add_argument("--limit", type=int, help="at most this many inputs")
    p.add_argument(
        "--classes",
        type=Path,
        help="new classes: CSV (class,<attribute names>...) or 'name: attr; attr'",
    )
    p.add_argument("--replace", action="store_true", help="rank only the classes of --classes")
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument(
        "--gamma", type=float, help="calibration γ for unseen/new classes (default: the run's)"
    )
    p.add_argument(
        "--weights", help="backbone weights for --images (default: those recorded at extraction)"
    )
    p.add_argument(
        "--data", type=Path, help="the training benchmark file (default: the one in the checkpoint)"
    )
    p.add_argument(
        "--max-risk",
        type=float,
        help="answer only inputs whose confidence reaches the threshold that kept the error rate of "
        "the validation decisions at or below this fraction (e.g. 0.1); the rest are abstentions. "
        "The threshold is never below the one these inputs' own mean 1 − confidence asks for, so "
        "whether an input is answered can depend on the others given with it",
    )
    p.add_argument(
        "--allow-other-classes",
        action="store_true",
        help="use a --data file whose class side differs from the model's (each difference is reported)",
    )
    p.add_argument("--json", type=Path, help="write the predictions as JSON here")
    p.add_argument("--csv", type=Path, help="write the predictions as CSV here")
    p.set_defaults(func=cmd_predict)


def _inputs(args: argparse.Namespace, predictor: Any) -> tuple[np.ndarray, list[str]]:
    if args.features is not None:
        x = load_npy(args.features, "features")
        if x.ndim == 3:  # one feature map (D_v, h, w)
            x = x[None]
        ids = [f"{args.features.name}[{i}]" for i in range(len(x))]
    elif args.images is not None:
        x = predictor.features_from_images(args.images, weights=args.weights)
        ids = [str(p) for p in args.images]
    else:
        from crest.data.schema.hdf5 import read_benchmark

        bench = read_benchmark(args.benchmark)
        if args.rows:
            rows = np.asarray(args.rows)
        elif args.split:
            if args.split not in bench.splits:
                raise DataError(
                    args.benchmark,
                    args.split,
                    f"no such split; expected one of {', '.join(bench.splits)}",
                )
            rows = bench.splits[args.split]
        else:
            raise DataError(args.benchmark, None, "give --rows or --split to choose inputs")
        if rows.size and (rows.min() < 0 or rows.max() >= bench.num_images):
            raise DataError(
                args.benchmark, "--rows", f"row out of range [0, {bench.num_images - 1}]"
            )
        rows = rows[: args.limit] if args.limit else rows
        x = FeatureDataset(args.benchmark, rows, labels=bench.labels).read_rows(
            np.arange(len(rows))
        )
        ids = [f"row {r}" for r in rows]
    if args.limit:
        x, ids = x[: args.limit], ids[: args.limit]
    return x, ids


def _csv_text(pred: Prediction, ids: list[str]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    header = ["input", "rank", "class", "score", "new_or_unseen", "confidence", "p_unseen"]
    w.writerow([*header, "vacuity", *(["accepted"] if pred.accepted is not None else [])])
    for rec, name in zip(pred.records(), ids, strict=True):
        for rank, t in enumerate(rec["top"], start=1):
            w.writerow(
                [
                    name,
                    rank,
                    t["class"],
                    f"{t['score']:.6f}",
                    int(t["unseen"]),
                    f"{rec['confidence']:.6f}",
                    f"{rec['p_unseen']:.6f}",
                    f"{rec['vacuity']:.6f}",
                    *([int(rec["accepted"])] if "accepted" in rec else []),
                ]
            )
    return buf.getvalue()


def cmd_predict(args: argparse.Namespace) -> int:
    predictor = load(args.checkpoint, data=args.data, allow_other_classes=args.allow_other_classes)
    classes = read_class_file(args.classes, predictor.attribute_names) if args.classes else None
    x, ids = _inputs(args, predictor)
    pred = predictor.predict(
        x,
        classes=classes,
        mode="replace" if args.replace else "add",
        top_k=args.top_k,
        gamma=args.gamma,
        source=args.features,
        max_risk=args.max_risk,
    )
    print(
        f"{len(ids)} inputs, {len(pred.class_names)} classes in play ({int(pred.unseen.sum())} unseen/new get "
        f"γ={pred.gamma:g})"
    )
    for rec, name in zip(pred.records(), ids, strict=True):
        ranked = ", ".join(
            f"{t['class']}{'*' if t['unseen'] else ''} {t['score']:.2f}" for t in rec["top"]
        )
        attrs = ", ".join(a["attribute"] for a in rec["top_attributes"][:3])
        verdict = (
            "" if "accepted" not in rec else (" | answered" if rec["accepted"] else " | ABSTAIN")
        )
        print(
            f"{name}: {ranked} | confidence {rec['confidence']:.2f}, p_unseen {rec['p_unseen']:.2f},"
            f" vacuity {rec['vacuity']:.3f}{verdict} | because: {attrs}"
        )
    print(
        "(* = unseen or new class; confidence: probability the top class is right; p_unseen: "
        "belief the input shows a class not seen in training; vacuity: the paper's u = K/S)"
    )
    if pred.accepted is not None:
        print(
            f"--max-risk {args.max_risk:g}: answered {int(pred.accepted.sum())} of "
            f"{len(pred.accepted)} inputs (coverage {100 * pred.coverage:.1f}%) at confidence ≥ "
            f"{pred.threshold:.3f}, threshold {pred.threshold_source}"
        )
    if args.json:
        write_text_atomic(
            args.json,
            json.dumps(
                [{"id": i, **r} for i, r in zip(ids, pred.records(), strict=True)], indent=2
            ),
        )
    if args.csv:
        write_text_atomic(args.csv, _csv_text(pred, ids))
    return 0
