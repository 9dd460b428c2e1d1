"""Where crest's recommended recipes depart from the paper's method: one row per config key, with
the paper's value. The `*-paper` configs set every key to that value; report.md names each row a
run departs by; docs/method.md §7.4 gives the same table and why (a test keeps the three equal)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Cfg = dict[str, Any]


def _both_branches(cfg: Cfg) -> bool:
    return bool(cfg["model"]["use_vgt"] and cfg["model"]["use_agt"])


@dataclass(frozen=True)
class Departure:
    key: str  # section.field
    paper: Any  # the paper's value
    what: str  # the sentence report.md shows for a run that departs
    #: when the key means anything (a switch between two branches needs both); None: always
    applies: Callable[[Cfg], bool] | None = None

    def value(self, cfg: Cfg) -> Any:
        section, name = self.key.split(".")
        return cfg[section][name]

    def departs(self, cfg: Cfg) -> bool:
        if self.applies is not None and not self.applies(cfg):
            return False
        return bool(self.value(cfg) != self.paper)


DEPARTURES: tuple[Departure, ...] = (
    Departure(
        "loss.ce_over",
        "seen",
        "cross-entropy over all classes in play (TransZero's code), not the seen classes",
    ),
    Departure(
        "loss.branch_supervision",
        0.0,
        "each direction also trained on its own ARISE loss",
        _both_branches,
    ),
    Departure(
        "model.center_attribute_vectors",
        False,
        "attribute word vectors centred before L2 normalisation",
    ),
    Departure(
        "model.shared_front",
        True,
        "each direction has its own region and attribute embeddings",
        _both_branches,
    ),
    Departure(
        "train.select_mu",
        False,
        "μ chosen on the validation classes with the epoch and γ",
        lambda cfg: _both_branches(cfg) and cfg["train"]["selection"] == "val",
    ),
    # options no recipe turns on, listed so that a run that does is labelled too
    Departure("loss.edl_over", "seen", "L_EDL over all classes in play"),
    Departure(
        "model.agt_init",
        "default",
        "AGT's W_4 starts at zero (TransZero++)",
        lambda c: c["model"]["use_agt"],
    ),
)


def departures(cfg: Cfg) -> list[str]:
    """The departures of ``cfg`` (a resolved config as a dict) from the paper, as sentences
    naming the key and its value; none for a peer, whose switches these are not."""
    if cfg["model"].get("name", "crest") != "crest":
        return []
    return [
        f"{d.what} (`{d.key}={_show(d.value(cfg))}`; the paper: {_show(d.paper)})"
        for d in DEPARTURES
        if d.departs(cfg)
    ]


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return f"{value:g}" if isinstance(value, float) else str(value)
