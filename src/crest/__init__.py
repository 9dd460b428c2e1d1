"""CREST zero-shot learning: library first, the `crest` CLI only wraps it.

import crest
model = crest.load("runs/x/checkpoints/last.pt")
result = model.predict(features, classes=crest.read_class_file("new_classes.csv", model.attribute_names))
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crest.version import package_version

__version__ = package_version()

if TYPE_CHECKING:
    from crest.class_files import read_class_file
    from crest.predict import load

__all__ = ["__version__", "load", "read_class_file"]


def __getattr__(name: str) -> Any:
    # lazy: `import crest` stays light (no torch) until the API is used
    if name == "load":
        from crest.predict import load

        return load
    if name == "read_class_file":
        from crest.class_files import read_class_file

        return read_class_file
    raise AttributeError(name)
