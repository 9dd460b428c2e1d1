"""CREST zero-shot learning: library first, the `crest` CLI only wraps it."""

__version__ = "0.1.0"
