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
    # options the `synthetic` recipe (every synthetic and like world) turns on and the dataset
    # recipes do not yet: no real features here to validate them on (docs/method.md §8.8);
    # warm-up and a zero W_V are options no recipe turns on
    Departure(
        "model.front_init",
        "default",
        "region embeddings start centred on a sample of training images",
    ),
    Departure(
        "train.batch_size",
        64,
        "a batch size other than the paper's",
    ),
    Departure(
        "train.min_steps_per_epoch",
        0,
        "a small phase's batch shrinks to give every epoch a minimum of steps",
    ),
    Departure(
        "train.warmup_steps",
        0,
        "learning rate warmed up linearly over the first steps",
    ),
    Departure(
        "model.vgt_init",
        "default",
        "VGT's W_V starts at zero",
        lambda c: c["model"]["use_vgt"],
    ),
    Departure(
        "model.vgt_value_gain",
        1.0,
        "VGT's decoder value and output maps start scaled up",
        lambda c: c["model"]["use_vgt"],
    ),
    Departure(
        "model.residual_init",
        "default",
        "the attention blocks' feed-forward and self-attention output layers start at zero",
    ),
    Departure(
        "model.agt_gain",
        1.0,
        "AGT's W_4 starts scaled down",
        lambda c: c["model"]["use_agt"] and c["model"]["agt_init"] != "zero",
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
