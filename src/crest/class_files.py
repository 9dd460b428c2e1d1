"""User class files for prediction: new classes described by attributes.

Two formats, chosen by content:

* CSV with a header: ``class,<attribute name>,<attribute name>,...`` naming every attribute of the
  model once (any order), one class per row with one number per attribute;
* a list file: one class per line, ``class name: attribute; attribute; ...`` — the attributes the
  class has (value 1, all others 0). Attribute names must be the model's.

Rows are clipped at 0 and L2-normalised, as the model's class matrix is.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from crest.errors import DataError


@dataclass(frozen=True)
class ClassTable:
    names: list[str]
    matrix: np.ndarray  # (C', A), rows L2-normalised
    source: Path | None = None  # the file the classes came from (for error messages)

    def __len__(self) -> int:
        return len(self.names)


def _normalise(path: Path, names: list[str], raw: np.ndarray) -> ClassTable:
    if not np.all(np.isfinite(raw)):
        r, c = np.argwhere(~np.isfinite(raw))[0]
        raise DataError(
            path, f"class '{names[r]}'", f"value {c + 1} is NaN/inf; expected a finite number"
        )
    if not names:
        raise DataError(path, None, "no classes found; expected at least one class row")
    seen: set[str] = set()
    for name in names:
        if not name:
            raise DataError(path, "class name", "is empty; every class needs a name")
        if name in seen:
            raise DataError(path, f"class '{name}'", "appears twice; class names must be unique")
        seen.add(name)
    z = np.clip(raw, 0.0, None)
    norms = np.linalg.norm(z, axis=1, keepdims=True)
    empty = np.flatnonzero(norms[:, 0] == 0)
    if empty.size:
        raise DataError(
            path,
            f"class '{names[empty[0]]}'",
            "has no positive attribute value; cannot describe a class",
        )
    return ClassTable(names, (z / norms).astype(np.float32), path)


def _read_csv(path: Path, text: str, attributes: list[str]) -> ClassTable:
    try:
        rows = [r for r in csv.reader(io.StringIO(text)) if r and any(c.strip() for c in r)]
    except csv.Error as exc:
        raise DataError(path, None, f"not a readable CSV: {exc}") from exc
    header, body = [c.strip() for c in rows[0]], rows[1:]
    columns = header[1:]
    index = {a: i for i, a in enumerate(attributes)}
    unknown = [c for c in columns if c not in index]
    if unknown:
        raise DataError(
            path,
            "header",
            f"unknown attribute name '{unknown[0]}'; expected the model's {len(attributes)} attribute names",
        )
    missing = [a for a in attributes if a not in set(columns)]
    if missing or len(columns) != len(set(columns)):
        raise DataError(
            path,
            "header",
            f"{len(columns)} attribute columns; expected each of the model's {len(attributes)} "
            f"attributes once"
            + (f" (missing '{missing[0]}')" if missing else " (a duplicate column)"),
        )
    order = [index[c] for c in columns]
    names, values = [], np.zeros((len(body), len(attributes)))
    for line, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise DataError(
                path, f"line {line}", f"{len(row) - 1} attribute values; expected {len(columns)}"
            )
        names.append(row[0].strip())
        try:
            values[len(names) - 1, order] = [float(v) for v in row[1:]]
        except ValueError as exc:
            raise DataError(path, f"line {line}", f"not a number: {exc}") from exc
    return _normalise(path, names, values)


def _read_list(path: Path, content: str, attributes: list[str]) -> ClassTable:
    index = {a: i for i, a in enumerate(attributes)}
    names, rows = [], []
    for line, text in enumerate(content.splitlines(), start=1):
        if not text.strip() or text.lstrip().startswith("#"):
            continue
        name, sep, rest = text.partition(":")
        if not sep:
            raise DataError(
                path, f"line {line}", "expected 'class name: attribute; attribute; ...'"
            )
        row = np.zeros(len(attributes))
        for attr in (a.strip() for a in rest.split(";")):
            if not attr:
                continue
            if attr not in index:
                raise DataError(
                    path,
                    f"line {line}",
                    f"unknown attribute name '{attr}'; expected one of the model's attributes",
                )
            row[index[attr]] = 1.0
        names.append(name.strip())
        rows.append(row)
    if not rows:
        raise DataError(path, None, "no classes found")
    return _normalise(path, names, np.stack(rows))


def _text(path: Path) -> str:
    """The file as UTF-8 text, or a DataError saying what it is instead."""
    raw = path.read_bytes()
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DataError(path, None, "is UTF-16 text; expected UTF-8 (save it as UTF-8 CSV)")
    if b"\x00" in raw:
        raise DataError(path, None, "is a binary file; expected a UTF-8 CSV or class list")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(
            path, None, f"is not UTF-8 text ({exc.reason} at byte {exc.start})"
        ) from exc


def read_class_file(path: str | Path, attributes: list[str]) -> ClassTable:
    """New classes from ``path`` (CSV with attribute-name header, or a list file)."""
    path = Path(path)
    if not path.exists():
        raise DataError(path, None, "class file not found")
    if not path.is_file():
        raise DataError(path, None, "is not a file")
    text = _text(path)
    first = next((ln for ln in text.splitlines() if ln.strip()), "")
    if first.split(",")[0].strip().lower() in ("class", "name", "class_name") and "," in first:
        return _read_csv(path, text, attributes)
    return _read_list(path, text, attributes)
