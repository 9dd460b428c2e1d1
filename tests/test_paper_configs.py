"""The paper's method one flag away: `*-paper` configs differ from crest's recipes exactly by the
departures docs/method.md §7.4 lists, each set to the paper's value, and report.md names them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from crest.config import dataset_of, load_config
from crest.engine.report import config_summary, deviations
from crest.settings.departures import DEPARTURES

DOCS = Path(__file__).resolve().parents[1] / "docs" / "method.md"


def documented() -> dict[str, tuple[Any, Any]]:
    """key → (the paper's value, the recipes' value) from the table of docs/method.md §7.4."""
    text = DOCS.read_text()
    start = text.index("### 7.4")
    section = text[start : text.index("\n## 8.", start)]
    rows = re.findall(r"^\| `([a-z_]+\.[a-z_]+)` \| `([^`]+)` \| `([^`]+)` \|", section, re.M)
    assert rows, "no departure table in docs/method.md §7.4"
    return {key: (yaml.safe_load(paper), yaml.safe_load(ours)) for key, paper, ours in rows}


def flat(cfg: Any) -> dict[str, Any]:
    d = cfg.to_dict()
    return {
        f"{section}.{k}": v
        for section, values in d.items()
        if isinstance(values, dict)
        for k, v in values.items()
    }


def test_the_docs_table_is_the_code_table() -> None:
    table = documented()
    assert set(table) == {d.key for d in DEPARTURES}
    for d in DEPARTURES:
        assert table[d.key][0] == d.paper, d.key


@pytest.mark.parametrize("dataset", ["cub", "sun", "awa2"])
def test_paper_config_differs_exactly_by_the_listed_departures(dataset: str) -> None:
    ours, paper = load_config(dataset), load_config(f"{dataset}-paper")
    a, b = flat(ours), flat(paper)
    changed = {k for k in a if a[k] != b[k]}
    table = documented()
    # every documented row whose recipe value is not the paper's, and nothing else
    assert changed == {k for k, (p, r) in table.items() if p != r}
    for key in changed:
        assert b[key] == table[key][0], f"{dataset}-paper: {key}"
        assert a[key] == table[key][1], f"{dataset}: {key}"
    assert paper.name == f"{dataset}-paper" and dataset_of(paper.name) == dataset


@pytest.mark.parametrize("dataset", ["cub", "sun", "awa2"])
def test_report_lists_every_departure_and_none_for_the_paper(dataset: str) -> None:
    ours = load_config(dataset).to_dict()
    lines = deviations(ours)
    assert len(lines) == sum(p != r for p, r in documented().values())
    for key in ("loss.ce_over", "loss.branch_supervision", "train.select_mu"):
        assert any(f"`{key}=" in line for line in lines), key
    assert deviations(load_config(f"{dataset}-paper").to_dict()) == []
    summary = config_summary(load_config(f"{dataset}-paper").to_dict())
    assert "departures from the paper's method (docs/method.md §7.4): none" in summary
    assert "reported beyond the paper: confidence and p_unseen" in summary


def test_a_non_default_option_is_named_as_a_departure() -> None:
    cfg = load_config("cub-paper", ["loss.edl_over=all", "model.agt_init=zero"]).to_dict()
    text = " ".join(deviations(cfg))
    assert "`loss.edl_over=all`" in text and "`model.agt_init=zero`" in text
    # a switch between two branches means nothing with one of them off
    one = load_config("cub", ["model.use_agt=false"]).to_dict()
    assert not any("loss.branch_supervision" in line for line in deviations(one))
    assert any("`loss.ce_over=all`" in line for line in deviations(one))
    # a peer's report does not list CREST's switches
    assert deviations(load_config("cub", ["model.name=dazle"]).to_dict()) == []
