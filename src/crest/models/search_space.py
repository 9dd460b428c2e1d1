"""What `crest tune` may move for a model: each searched config key with its range and scale.

A model declares its space beside its recipes (``ModelEntry.search_space``); every range holds
the authors' value of every dataset recipe (``tests/test_tune.py`` checks it), so a study can
always return to the recipe it started from. No torch and no Optuna here: a space is plain data
that ``crest.tune`` turns into suggestions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Param:
    """One searched key: a float in ``[low, high]``, sampled on a log scale when ``log``."""

    key: str  # section.field of the config, e.g. train.lr
    low: float
    high: float
    log: bool = False
    what: str = ""  # one line for the report: what the key does, where the recipes put it

    def __post_init__(self) -> None:
        if "." not in self.key:
            raise ValueError(f"search space key {self.key!r}: expected section.field")
        if not (math.isfinite(self.low) and math.isfinite(self.high) and self.low < self.high):
            raise ValueError(f"{self.key}: range [{self.low}, {self.high}] is empty")
        if self.log and self.low <= 0:
            raise ValueError(f"{self.key}: a log-scale range must start above 0, got {self.low}")

    def contains(self, value: float) -> bool:
        return self.low <= float(value) <= self.high

    def describe(self) -> str:
        scale = "log" if self.log else "linear"
        return f"[{self.low:g}, {self.high:g}] ({scale})"


@dataclass(frozen=True)
class SearchSpace:
    """The searched keys of one model, in the order they are suggested."""

    params: tuple[Param, ...]

    def __post_init__(self) -> None:
        keys = [p.key for p in self.params]
        if len(set(keys)) != len(keys):
            raise ValueError(f"search space repeats a key: {keys}")

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(p.key for p in self.params)

    def values_in(self, cfg: Any) -> dict[str, float]:
        """The value each searched key has in ``cfg`` (a ``crest.config.Config``)."""
        out = {}
        for p in self.params:
            section, _, name = p.key.partition(".")
            out[p.key] = float(getattr(getattr(cfg, section), name))
        return out

    def without(self, keys: set[str]) -> SearchSpace:
        """This space with ``keys`` held fixed (left out of the search)."""
        return SearchSpace(tuple(p for p in self.params if p.key not in keys))


#: the learning rate and weight decay every model is tuned over: 1e-4 for both in every
#: released recipe, 3e-4 and 1e-3 in the synthetic-world recipes (2-core CPU runs, docs/peers.md)
LEARNING_RATE = Param("train.lr", 1e-5, 3e-3, log=True, what="learning rate")
WEIGHT_DECAY = Param("train.weight_decay", 1e-6, 1e-2, log=True, what="weight decay")
