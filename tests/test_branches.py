"""Each grounding direction seen on its own, μ chosen on validation, and per-branch supervision."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from crest.config import LossConfig
from crest.engine.evaluate import MU_GRID, Outputs, branch_metrics, mu_curve
from crest.engine.report import branch_table
from crest.engine.selection import choose_val_setting
from crest.metrics import seen_unseen_curve
from crest.models.crest import CrestLoss, CrestOutput

SEEN, UNSEEN = np.array([0, 1, 2]), np.array([3, 4])


def _outputs(rng: np.random.Generator, labels: np.ndarray) -> Outputs:
    n = len(labels)
    onehot = np.eye(5)[labels]
    vgt = 2.0 * onehot + rng.normal(size=(n, 5))  # a good direction
    agt = 0.5 * onehot + rng.normal(size=(n, 5))  # a weak one
    fused = 0.3 * agt + 0.7 * vgt
    return Outputs(
        logits=fused,
        labels=labels,
        vacuity=rng.random(n),
        rows=np.arange(n),
        alpha=np.ones((n, 5)),
        branch_logits={"vgt": vgt, "agt": agt},
        branch_vacuity={"vgt": rng.random(n), "agt": rng.random(n)},
    )


@pytest.fixture
def outs():
    rng = np.random.default_rng(0)
    return _outputs(rng, np.repeat(SEEN, 20)), _outputs(rng, np.repeat(UNSEEN, 20))


def test_branch_metrics_score_each_direction_alone(outs):
    s, u = outs
    m = branch_metrics(s, u, SEEN, UNSEEN, gamma=0.0)
    assert set(m) == {"vgt", "agt"}
    vgt_curve = seen_unseen_curve(
        s.branch_logits["vgt"], s.labels, u.branch_logits["vgt"], u.labels, SEEN, UNSEEN
    )
    assert m["vgt"]["best_gamma_h"] == pytest.approx(vgt_curve.best_harmonic)
    assert m["vgt"]["czsl_acc"] > m["agt"]["czsl_acc"]  # the stronger direction is visible
    assert m["agt"]["vacuity"] == pytest.approx(
        np.concatenate([s.branch_vacuity["agt"], u.branch_vacuity["agt"]]).mean()
    )
    one_branch = Outputs(s.logits, s.labels, s.vacuity, s.rows, s.alpha)
    assert branch_metrics(one_branch, one_branch, SEEN, UNSEEN, 0.0) == {}


def test_mu_curve_ends_are_the_branches(outs):
    s, u = outs
    curve = mu_curve(s, u, SEEN, UNSEEN)
    assert [p["mu"] for p in curve] == list(MU_GRID)
    m = branch_metrics(s, u, SEEN, UNSEEN, 0.0)
    assert curve[0]["best_gamma_h"] == pytest.approx(m["vgt"]["best_gamma_h"])  # μ = 0: VGT
    assert curve[-1]["best_gamma_h"] == pytest.approx(m["agt"]["best_gamma_h"])  # μ = 1: AGT
    assert curve[0]["czsl_acc"] == pytest.approx(m["vgt"]["czsl_acc"])
    assert curve[-1]["czsl_acc"] == pytest.approx(m["agt"]["czsl_acc"])


def _val(epoch, curve):
    return {
        "phase": "val",
        "epoch": epoch,
        "czsl_acc": 0.5,
        "best_gamma_h": max(p["best_gamma_h"] for p in curve),
        "best_gamma": curve[0]["best_gamma"],
        "mu_curve": curve,
    }


def test_choose_val_setting_picks_epoch_mu_and_gamma():
    history = [
        _val(
            1,
            [
                {"mu": 0.0, "best_gamma": 1.0, "best_gamma_h": 0.4},
                {"mu": 0.5, "best_gamma": 2.0, "best_gamma_h": 0.5},
            ],
        ),
        _val(
            2,
            [
                {"mu": 0.0, "best_gamma": 0.5, "best_gamma_h": 0.7},
                {"mu": 0.5, "best_gamma": 1.5, "best_gamma_h": 0.6},
            ],
        ),
        _val(
            3,
            [
                {"mu": 0.0, "best_gamma": 0.1, "best_gamma_h": 0.7},
                {"mu": 0.5, "best_gamma": 0.2, "best_gamma_h": 0.7},
            ],
        ),
    ]
    c = choose_val_setting(history, mu=0.3)
    assert (c.epoch, c.mu, c.gamma, c.h) == (2, 0.0, 0.5, 0.7)  # ties: the earlier epoch
    tie = [
        _val(
            1,
            [
                {"mu": 0.0, "best_gamma": 1.0, "best_gamma_h": 0.5},
                {"mu": 0.5, "best_gamma": 2.0, "best_gamma_h": 0.5},
            ],
        )
    ]
    assert choose_val_setting(tie, mu=0.4).mu == 0.5  # then the μ nearest the configured one
    no_curve = [{**history[0], "mu_curve": []}]
    assert choose_val_setting(no_curve, mu=0.3).mu is None  # one-branch model: model.mu kept


def _fake_output(batch: int, classes: int, requires_grad: bool = True) -> CrestOutput:
    g = torch.Generator().manual_seed(0)
    lv = torch.randn(batch, classes, generator=g, requires_grad=requires_grad)
    la = torch.randn(batch, classes, generator=g, requires_grad=requires_grad)
    fused = 0.3 * la + 0.7 * lv
    av, aa = torch.nn.functional.softplus(lv) + 1, torch.nn.functional.softplus(la) + 1
    none = None
    return CrestOutput(
        embedding=torch.zeros(batch, 2),
        logits=fused,
        scores_vgt=none,
        scores_agt=none,
        scores_agt_raw=none,
        logits_vgt=lv,
        logits_agt=la,
        attention=none,
        region_relevance=none,
        bank_query=none,
        alpha_vgt=av,
        alpha_agt=aa,
        alpha=(av + aa) / 2,
        vacuity=torch.zeros(batch),
        vacuity_vgt=none,
        vacuity_agt=none,
        conflict=none,
        class_matrix=torch.eye(classes, 2),
    )


def test_branch_supervision_trains_each_direction_on_its_own():
    seen, unseen = torch.tensor([0, 1, 2]), torch.tensor([3, 4])
    target = torch.tensor([0, 1, 2, 0])
    out = _fake_output(4, 5)
    paper_cfg = LossConfig(use_vicl=False, use_digs=False, use_edl=False, branch_supervision=0.0)
    paper = CrestLoss(paper_cfg, seen, unseen)
    _, terms = paper(out, target, 0)
    assert "arise_vgt" not in terms
    cfg = LossConfig(use_vicl=False, use_digs=False, use_edl=False, branch_supervision=0.5)
    total, terms = CrestLoss(cfg, seen, unseen)(out, target, 0)
    assert terms["arise_vgt"] > 0 and terms["arise_agt"] > 0
    total.backward()
    # with the fused loss alone VGT's gradient is (1 − μ) × the fused one; now it has its own
    assert out.logits_vgt is not None and out.logits_vgt.grad is not None
    assert out.logits_agt is not None and out.logits_agt.grad is not None


def test_edl_over_all_classes_in_play_changes_the_evidential_loss():
    seen, unseen = torch.tensor([0, 1, 2]), torch.tensor([3, 4])
    target = torch.tensor([0, 1, 2, 0])
    out = _fake_output(4, 5, requires_grad=False)
    over_seen = CrestLoss(LossConfig(), seen, unseen).edl(out, target, epoch=5)
    over_all = CrestLoss(LossConfig(edl_over="all"), seen, unseen).edl(out, target, epoch=5)
    assert torch.isfinite(over_all) and not torch.isclose(over_seen, over_all)


def test_branch_table_lists_fused_and_both_directions(outs):
    s, u = outs
    metrics = {
        "czsl_acc": 0.8,
        "gzsl_u": 0.7,
        "gzsl_s": 0.6,
        "gzsl_h": 0.65,
        "best_gamma_h": 0.66,
        "vacuity_seen": 0.2,
        "vacuity_unseen": 0.4,
        "branches": branch_metrics(s, u, SEEN, UNSEEN, 0.0),
    }
    table = branch_table(metrics)
    assert "| fused (reported) | 80.0 | 70.0 | 60.0 | 65.0 | 66.0 | 0.300 |" in table
    assert "VGT alone" in table and "AGT alone" in table


def test_reported_scores_use_the_validated_mu_training_keeps_its_own():
    from crest.config import ModelConfig
    from crest.models import ArrayInputs, create_model

    cfg = ModelConfig(d=8, d_ff=8, bank_size=4, bank_dim=2, mu=0.3, score_mu=0.9, dropout=0.0)
    rng = np.random.default_rng(0)
    model = create_model(
        cfg, ArrayInputs(6, rng.normal(size=(5, 7)), np.abs(rng.normal(size=(4, 5))))
    )
    x = torch.rand(3, 6, 2, 2)
    model.train()
    out = model(x)
    assert out.logits_agt is not None and out.logits_vgt is not None
    torch.testing.assert_close(out.logits, 0.3 * out.logits_agt + 0.7 * out.logits_vgt)
    model.eval()
    with torch.no_grad():
        out = model(x)
    assert out.logits_agt is not None and out.logits_vgt is not None
    torch.testing.assert_close(out.logits, 0.9 * out.logits_agt + 0.1 * out.logits_vgt)
