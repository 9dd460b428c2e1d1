"""ARISE, VICL, DIGS and the total loss: hand-computed cases, switches, extreme inputs."""

from __future__ import annotations

import math

import pytest
import torch

from crest.config import LossConfig, ModelConfig
from crest.losses import arise_loss, digs_loss, vicl_loss, vicl_positives
from crest.models import ArrayInputs, CrestLoss, create_model


def test_vicl_prefers_same_class_positive():
    sim = torch.tensor(
        [
            [1.0, 0.9, 0.2, 0.1],
            [0.9, 1.0, 0.3, 0.4],
            [0.2, 0.3, 1.0, 0.8],
            [0.1, 0.4, 0.8, 1.0],
        ]
    )
    labels = torch.tensor([0, 1, 0, 2])
    # 0: same class is 2 (0.2) although 1 is nearer; 1: no partner → nearest other (0);
    # 2: same class 0; 3: no partner → nearest other (2)
    assert vicl_positives(sim, labels).tolist() == [2, 0, 0, 2]
    # with δ above their same-class similarity (0.2), anchors 0 and 2 fall back to the nearest other
    assert vicl_positives(sim, labels, delta=0.5).tolist() == [1, 0, 3, 2]


def test_vicl_value_by_hand():
    scores = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    labels = torch.tensor([0, 0, 1])
    tau = 0.5
    # anchors 0,1: positive each other (cos 1), negative the third (cos 0)
    l01 = -math.log(math.exp(1 / tau) / (math.exp(1 / tau) + math.exp(0)))
    # anchor 2: no partner → nearest other (cos 0 with both: the first, index 0); denominator both
    l2 = -math.log(math.exp(0) / (math.exp(0) + math.exp(0)))
    assert vicl_loss(scores, labels, tau=tau).item() == pytest.approx((2 * l01 + l2) / 3, rel=1e-5)


def test_arise_by_hand():
    logits = torch.tensor([[2.0, 0.0, 1.0, -1.0]])
    seen, unseen = torch.tensor([0, 1]), torch.tensor([2, 3])
    ce, sc = arise_loss(logits, torch.tensor([0]), seen, unseen, lambda_cal=0.2)
    assert ce.item() == pytest.approx(-math.log(math.exp(2) / (math.exp(2) + 1)), rel=1e-6)
    shifted = [2 - 1, 0 - 1, 1 + 1, -1 + 1]
    total = sum(math.exp(v) for v in shifted)
    mass = (math.exp(2) + math.exp(0)) / total
    assert sc.item() == pytest.approx(-math.log(mass), rel=1e-6)
    _, sc_paper = arise_loss(logits, torch.tensor([0]), seen, unseen, 0.2, sc_form="paper")
    assert sc_paper.item() == pytest.approx(
        -(2 - math.log(total)) - (0 - math.log(total)), rel=1e-6
    )
    ce_all, _ = arise_loss(logits, torch.tensor([0]), seen, unseen, 0.2, ce_over="all")
    assert ce_all.item() == pytest.approx(
        -math.log(math.exp(2) / sum(math.exp(v) for v in [2, 0, 1, -1]))
    )


def test_digs_by_hand():
    q = torch.tensor([[1.0, 0.0]])
    phi = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    # best pattern 0 (distance 0), second 1 (distance 2): triplet max(0 - 2 + 1, 0) = 0, reg 0
    assert digs_loss(q, phi, margin=1.0).item() == pytest.approx(0.0)
    q2 = torch.tensor([[1.0, 1.0]])  # equidistant from patterns 0 and 1: d = 2 - sqrt(2) each
    d = 2 - math.sqrt(2)
    assert digs_loss(q2, phi, margin=1.0).item() == pytest.approx(1.0 + d, rel=1e-5)


def test_losses_finite_for_extreme_logits():
    logits = torch.tensor([[1e4, -1e4, 0.0, 5.0], [-1e4, 1e4, -1e4, 1e4]], requires_grad=True)
    seen, unseen = torch.tensor([0, 1]), torch.tensor([2, 3])
    for form in ("code", "paper"):
        ce, sc = arise_loss(logits, torch.tensor([1, 0]), seen, unseen, 0.2, sc_form=form)
        v = vicl_loss(logits * 1.0, torch.tensor([0, 0]))
        d = digs_loss(logits, torch.randn(5, 4))
        total = ce + sc + v + d
        grad = torch.autograd.grad(total, logits)[0]
        assert torch.isfinite(total) and torch.isfinite(grad).all()


def _tiny_model(**overrides):
    cfg = ModelConfig(d=16, d_ff=24, dropout=0.1, bank_size=6, bank_dim=4, **overrides)
    g = torch.Generator().manual_seed(0)
    vectors = torch.randn(5, 12, generator=g).numpy()
    z = torch.rand(7, 5, generator=g).numpy()
    return create_model(cfg, ArrayInputs(10, vectors, z))


ROWS = {
    "full": ({}, {}),
    "no_agt": ({"use_agt": False}, {}),
    "no_vgt": ({"use_vgt": False}, {}),
    "no_edl": ({}, {"use_edl": False}),
    "no_vicl": ({}, {"use_vicl": False}),
    "no_digs": ({}, {"use_digs": False}),
    "lambda_cal=0": ({}, {"lambda_cal": 0.0}),
}


@pytest.mark.parametrize("row", sorted(ROWS))
@pytest.mark.parametrize("encoder", ["geometry", "plain"])
@pytest.mark.parametrize("fusion", ["average", "dempster"])
def test_forward_backward_every_switch(row, encoder, fusion):
    model_kw, loss_kw = ROWS[row]
    model = _tiny_model(
        encoder=encoder, fusion=fusion, bank_topk=3 if fusion == "dempster" else 0, **model_kw
    )
    loss_fn = CrestLoss(
        LossConfig(**loss_kw), torch.tensor([0, 1, 2, 3, 4]), torch.tensor([5, 6]), fusion
    )
    x = torch.rand(6, 10, 3, 4)  # a non-square grid: R is read from the data
    y = torch.tensor([0, 1, 1, 2, 4, 3])
    out = model(x)
    total, terms = loss_fn(out, y, epoch=4)
    total.backward()
    assert torch.isfinite(total)
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert ("vicl" in terms) == (model_kw.get("use_vgt", True) and loss_kw.get("use_vicl", True))
    assert ("edl" in terms) == loss_kw.get("use_edl", True)
    assert ("digs" in terms) == (model_kw.get("use_agt", True) and loss_kw.get("use_digs", True))
    assert out.alpha.shape == (6, 7) and out.vacuity.shape == (6,)
    assert out.attention is None  # training keeps no attribute→region map


def test_edl_term_changes_with_fusion():
    x, y = torch.rand(4, 10, 2, 2), torch.tensor([0, 1, 2, 3])
    seen, unseen = torch.tensor([0, 1, 2, 3, 4]), torch.tensor([5, 6])
    values = []
    for fusion in ("average", "dempster"):
        torch.manual_seed(0)
        model = _tiny_model(fusion=fusion).eval()
        out = model(x)
        values.append(CrestLoss(LossConfig(), seen, unseen, fusion).edl(out, y, epoch=3).item())
    assert values[0] != pytest.approx(values[1])
