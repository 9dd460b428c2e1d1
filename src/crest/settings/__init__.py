"""Typed settings of the registered peer models (one module each), read by :mod:`crest.config`.

They sit in the leaf layer (no torch) so that a config can be built and checked without
importing any model; each model's own subpackage under :mod:`crest.models` reads its section."""
