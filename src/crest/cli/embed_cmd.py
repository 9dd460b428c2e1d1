"""`crest data embed-attributes`: an attribute word-vector matrix (.npy) from attribute names."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from crest.atomic import write_text_atomic
from crest.data.sources.attribute_names import names_from_benchmark, read_attribute_names
from crest.data.sources.word_vectors import (
    AttributeEmbedding,
    convert_vectors,
    embed_with_sentence_model,
    embed_with_word_vectors,
    save_vectors,
)
from crest.errors import DataError

_SHOWN_OOV = 10
_SHOWN_ZERO = 5


def register(data_sub: Any) -> None:
    """Add ``embed-attributes`` to the ``crest data`` sub-commands."""
    p = data_sub.add_parser(
        "embed-attributes",
        help="attribute word vectors (.npy) from attribute names",
        description=(
            "Build one vector per attribute: the sum of the word vectors of the words of its "
            "name (CUB 'has_bill_shape::curved_(up_or_down)' -> bill shape curved up or down), "
            "or one sentence-model vector per phrase, or convert an existing .pkl/.npy."
        ),
    )
    names = p.add_mutually_exclusive_group()
    names.add_argument(
        "--names",
        type=Path,
        metavar="FILE",
        help="attribute names: one per line, CUB attributes.txt, AWA2 predicates.txt, "
        "SUN attributes.mat or a new_des.csv",
    )
    names.add_argument(
        "--from-benchmark",
        type=Path,
        metavar="FILE.h5",
        help="take the attribute names stored in a benchmark file",
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--word-vectors",
        type=Path,
        metavar="FILE",
        help="GloVe or word2vec text vectors (.txt, .vec, optionally .gz); streamed",
    )
    source.add_argument(
        "--sentence-model",
        type=Path,
        metavar="DIR",
        help="a local sentence-transformers model folder (needs sentence-transformers)",
    )
    source.add_argument(
        "--vectors",
        type=Path,
        metavar="FILE",
        help="an existing .pkl/.npy attribute matrix to validate and convert",
    )
    p.add_argument("--out", type=Path, required=True, metavar="OUT.npy", help="output .npy file")
    p.add_argument("--report", type=Path, metavar="FILE.json", help="write the OOV report here")
    p.set_defaults(func=cmd_embed_attributes)


def _names(args: argparse.Namespace) -> list[str] | None:
    if args.names is not None:
        return read_attribute_names(args.names)
    if args.from_benchmark is not None:
        return names_from_benchmark(args.from_benchmark)
    return None


def _embed(args: argparse.Namespace, names: list[str] | None) -> AttributeEmbedding:
    if args.vectors is not None:
        return convert_vectors(args.vectors, names)
    if names is None:
        flag = "--word-vectors" if args.word_vectors is not None else "--sentence-model"
        raise DataError(
            None, "--names", f"{flag} needs attribute names: --names or --from-benchmark"
        )
    if args.word_vectors is not None:
        return embed_with_word_vectors(names, args.word_vectors)
    return embed_with_sentence_model(names, args.sentence_model)


def print_embedding_summary(emb: AttributeEmbedding, out: Path) -> None:
    """The lines the command prints: sizes, OOV words, all-zero rows."""
    print(f"wrote       {out}")
    print(f"attributes  {len(emb.names)}")
    print(f"dim         {emb.dim}")
    oov = emb.oov_words
    shown = ", ".join(oov[:_SHOWN_OOV]) + (", ..." if len(oov) > _SHOWN_OOV else "")
    print(f"OOV words   {len(oov)}" + (f" ({shown})" if oov else ""))
    zero = emb.zero_rows
    if zero:
        listed = ", ".join(f"{i} '{emb.names[i]}'" for i in zero[:_SHOWN_ZERO])
        more = ", ..." if len(zero) > _SHOWN_ZERO else ""
        print(f"zero rows   {len(zero)} (all-zero vectors): {listed}{more}")


def cmd_embed_attributes(args: argparse.Namespace) -> int:
    if args.out.suffix != ".npy":  # checked before a long read of the word-vector file
        raise DataError(args.out, None, "output must be a .npy file")
    emb = _embed(args, _names(args))
    out = save_vectors(args.out, emb.vectors)
    if args.report is not None:
        write_text_atomic(args.report, json.dumps(emb.report(), indent=2) + "\n")
    print_embedding_summary(emb, out)
    if args.report is not None:
        print(f"report      {args.report}")
    return 0
