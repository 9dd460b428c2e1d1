"""Attribute word vectors built from attribute names (`crest data embed-attributes`).

The region-based ZSL family (DAZLE, TransZero, MSDN, CREST) feeds its models one vector per
attribute: the SUM of the word vectors of the words of the attribute's phrase. This module
rebuilds such a matrix for any attribute list, from

* a word-vector text file (GloVe ``word v1 ... vd`` lines, or word2vec text format whose first
  line is a ``count dim`` header, optionally gzip-compressed). The file is streamed line by line
  and only the vectors of the needed words are kept, so a multi-GB file never sits in memory;
* a local sentence-transformers model folder (one vector per whole phrase), when the optional
  package ``sentence_transformers`` is installed;
* an existing ``.pkl``/``.npy`` matrix, which is only validated and converted.

Phrase rule (:func:`phrase_words`), written for CUB's ``has_bill_shape::curved_(up_or_down)``:
lower-case the name, split it on ``::``, ``_``, ``(``, ``)``, ``/`` and white space, drop tokens
with no letter or digit (CUB's ``16_-_32_in`` has a lone ``-``), and drop a leading ``has``
(CUB's part prefix carries no meaning). So that name gives
``["bill", "shape", "curved", "up", "or", "down"]``; SUN's ``sailing/ boating`` gives
``["sailing", "boating"]``. Hyphenated words (``multi-colored``) are kept whole; when a
hyphenated word has no vector, its hyphen-separated parts are used instead.
"""

from __future__ import annotations

import gzip
import importlib.util
import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from crest.atomic import atomic_path
from crest.data.sources.attribute_vectors import load_attribute_vectors
from crest.errors import CrestError, DataError

log = logging.getLogger(__name__)

_SPLIT = re.compile(r"::|[_()/\s]+")


class MissingDependencyError(CrestError, ImportError):
    """An optional package that a requested feature needs is not installed."""


# ---- phrases -------------------------------------------------------------------------------


def phrase_words(name: str) -> list[str]:
    """The words of an attribute name, by the rule in the module docstring."""
    words = [w for w in _SPLIT.split(name.lower()) if any(ch.isalnum() for ch in w)]
    if len(words) > 1 and words[0] == "has":
        words = words[1:]
    return words


def _lookup_candidates(word: str) -> list[str]:
    """The word itself and, for a hyphenated word, its parts (the fallback when it has no vector)."""
    parts = [p for p in word.split("-") if p]
    return [word, *parts] if len(parts) > 1 else [word]


# ---- streaming a word-vector text file -----------------------------------------------------


@dataclass
class WordVectorTable:
    """The vectors of the requested words found in one word-vector file."""

    vectors: dict[str, np.ndarray]
    dim: int
    format: str  # "glove" or "word2vec"
    lines_read: int


@contextmanager
def _open_text(path: Path) -> Iterator[IO[str]]:
    if not path.exists():
        raise DataError(path, None, "file not found")
    if path.suffix == ".gz":
        with gzip.open(path, "rt", encoding="utf-8") as gz:
            yield gz
    else:
        with path.open(encoding="utf-8") as fh:
            yield fh


def _parse_header(path: Path, first: str) -> tuple[str, int | None]:
    """("word2vec", dim) for a ``count dim`` header line, else ("glove", None)."""
    tokens = first.split()
    if len(tokens) == 2 and tokens[0].isdigit() and tokens[1].isdigit():
        dim = int(tokens[1])
        if dim < 1:
            raise DataError(path, "line 1", f"header gives dimension {dim}; expected >= 1")
        return "word2vec", dim
    if len(tokens) < 2:
        raise DataError(path, "line 1", "expected 'word v1 ... vd' or a 'count dim' header")
    return "glove", None


def read_word_vectors(path: str | Path, words: Iterable[str]) -> WordVectorTable:
    """Stream a GloVe/word2vec text file and keep the vectors of ``words`` only.

    A word is matched exactly first; if only a differently-cased form exists in the file (word2vec
    is case-sensitive, e.g. ``Arctic``), the first such form is used. The first occurrence of a
    word wins (word2vec files list frequent forms first). Reading stops early once every word
    has an exact match.
    """
    path = Path(path)
    wanted = set(words)
    exact: dict[str, np.ndarray] = {}
    folded: dict[str, np.ndarray] = {}
    dim: int | None = None
    fmt = "glove"
    n = 0
    try:
        with _open_text(path) as fh:
            for n, line in enumerate(fh, start=1):
                if n == 1:
                    fmt, dim = _parse_header(path, line)
                    if fmt == "word2vec":
                        continue
                if dim is None:
                    dim = len(line.split()) - 1
                word, _, rest = line.partition(" ")
                key = word if word in wanted else word.lower()
                if key not in wanted or key in exact or (key != word and key in folded):
                    continue
                vec = _parse_vector(path, n, rest, dim)
                if vec is None:  # a token with spaces in it (GloVe 840B has some): not ours
                    continue
                (exact if key == word else folded)[key] = vec
                if len(exact) == len(wanted):
                    log.debug("%s: all %d words found by line %d", path, len(wanted), n)
                    break
    except UnicodeDecodeError as exc:
        raise DataError(
            path,
            None,
            "not a UTF-8 text word-vector file (a binary word2vec .bin? convert it to text, e.g. "
            f"gensim's save_word2vec_format(binary=False)): {exc}",
        ) from exc
    except OSError as exc:  # a folder, a damaged .gz, a permission problem
        raise DataError(path, None, f"cannot read the word-vector file: {exc}") from exc
    if dim is None:
        raise DataError(path, None, "empty file; expected GloVe or word2vec text vectors")
    return WordVectorTable(vectors=folded | exact, dim=dim, format=fmt, lines_read=n)


def _parse_vector(path: Path, line_no: int, rest: str, dim: int) -> np.ndarray | None:
    values = rest.split()
    if len(values) != dim:
        return None
    try:
        return np.asarray(values, dtype=np.float64)
    except ValueError as exc:
        raise DataError(
            path, f"line {line_no}", f"expected a word followed by {dim} numbers: {exc}"
        ) from exc


# ---- embedding -----------------------------------------------------------------------------


@dataclass
class AttributeEmbedding:
    """An (A, D) attribute matrix and what went into each row."""

    vectors: np.ndarray  # (A, D) float32
    names: list[str]
    source: str
    words: list[list[str]] = field(default_factory=list)  # words per attribute
    missing: list[list[str]] = field(default_factory=list)  # OOV words per attribute

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    @property
    def zero_rows(self) -> list[int]:
        """Rows that are all zeros (for word vectors: every word of the phrase lacks a vector)."""
        return [int(i) for i in np.flatnonzero(~np.any(self.vectors, axis=1))]

    @property
    def oov_words(self) -> list[str]:
        """Distinct words without a vector, in order of first appearance."""
        return list(dict.fromkeys(w for ws in self.missing for w in ws))

    def report(self) -> dict[str, Any]:
        """The OOV report written by ``--report`` (plain JSON types)."""
        return {
            "source": self.source,
            "attributes": len(self.names),
            "dim": self.dim,
            "oov_words": self.oov_words,
            "zero_rows": [{"index": i, "name": self.names[i]} for i in self.zero_rows],
            "oov_by_attribute": [
                {"index": i, "name": self.names[i], "words": self.words[i], "missing": miss}
                for i, miss in enumerate(self.missing)
                if miss
            ],
        }


def embed_with_word_vectors(names: Sequence[str], vectors_path: str | Path) -> AttributeEmbedding:
    """Sum, per attribute, the word vectors of its phrase; report the words with no vector."""
    phrases = [phrase_words(n) for n in names]
    needed = {c for ws in phrases for w in ws for c in _lookup_candidates(w)}
    table = read_word_vectors(vectors_path, needed)
    out = np.zeros((len(names), table.dim), dtype=np.float64)
    missing: list[list[str]] = []
    for i, words in enumerate(phrases):
        row_missing: list[str] = []
        for word in words:
            found = _vectors_for(word, table.vectors, row_missing)
            for vec in found:
                out[i] += vec
        missing.append(row_missing)
    emb = AttributeEmbedding(
        vectors=out.astype(np.float32),
        names=list(names),
        source=str(vectors_path),
        words=phrases,
        missing=missing,
    )
    _warn_about_gaps(emb)
    return emb


def _vectors_for(word: str, table: dict[str, np.ndarray], missing: list[str]) -> list[np.ndarray]:
    """The vector(s) standing for ``word``; records in ``missing`` what has none."""
    if word in table:
        return [table[word]]
    parts = _lookup_candidates(word)[1:]
    found = [table[p] for p in parts if p in table]
    if not found:  # no vector for the word nor for any of its parts: report it as written
        missing.append(word)
        return []
    missing.extend(p for p in parts if p not in table)
    return found


def _warn_about_gaps(emb: AttributeEmbedding) -> None:
    for i in emb.zero_rows:
        log.warning(
            "attribute %d '%s': none of its words %s has a vector; its row is all zeros",
            i,
            emb.names[i],
            emb.words[i],
        )
    if emb.oov_words:
        log.info("%d words have no vector: %s", len(emb.oov_words), ", ".join(emb.oov_words[:10]))


def sentence_transformers_available() -> bool:
    """Whether the optional package ``sentence_transformers`` can be imported."""
    return importlib.util.find_spec("sentence_transformers") is not None


def embed_with_sentence_model(names: Sequence[str], model_dir: str | Path) -> AttributeEmbedding:
    """One vector per attribute phrase from a local sentence-transformers model folder."""
    model_dir = Path(model_dir)
    if not sentence_transformers_available():
        raise MissingDependencyError(
            "embedding with a sentence-transformers model needs the optional package "
            "'sentence_transformers', which is not installed: pip install sentence-transformers"
        )
    if not model_dir.is_dir():
        raise DataError(
            model_dir, None, "not a folder; expected a local sentence-transformers model folder"
        )
    from sentence_transformers import SentenceTransformer

    phrases = [phrase_words(n) for n in names]
    model = SentenceTransformer(str(model_dir), device="cpu")
    encoded = model.encode([" ".join(ws) for ws in phrases], convert_to_numpy=True)
    vectors = np.asarray(encoded, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[0] != len(names):
        raise DataError(model_dir, None, f"model returned shape {vectors.shape}; expected (A, D)")
    return AttributeEmbedding(
        vectors=vectors,
        names=list(names),
        source=str(model_dir),
        words=phrases,
        missing=[[] for _ in names],
    )


def convert_vectors(path: str | Path, names: Sequence[str] | None = None) -> AttributeEmbedding:
    """Validate an existing ``.pkl``/``.npy`` attribute matrix (one row per name when given)."""
    vectors = load_attribute_vectors(path, None if names is None else len(names))
    labels = list(names) if names is not None else [f"attribute_{i}" for i in range(len(vectors))]
    emb = AttributeEmbedding(
        vectors=vectors,
        names=labels,
        source=str(path),
        words=[[] for _ in labels],
        missing=[[] for _ in labels],
    )
    for i in emb.zero_rows:  # kept: the model copes, but the user should know (SUN has one)
        log.warning("%s: row %d ('%s') is all zeros", path, i, labels[i])
    return emb


def save_vectors(path: str | Path, vectors: np.ndarray) -> Path:
    """Write an (A, D) float32 ``.npy`` atomically (never a half-written file under ``path``)."""
    path = Path(path)
    if path.suffix != ".npy":
        raise DataError(path, None, "output must be a .npy file")
    arr = np.ascontiguousarray(vectors, dtype=np.float32)
    if arr.ndim != 2:
        raise DataError(path, None, f"refusing to write shape {arr.shape}; expected (A, D)")
    with atomic_path(path, suffix=".npy") as tmp, tmp.open("wb") as fh:
        np.save(fh, arr, allow_pickle=False)
    return path
