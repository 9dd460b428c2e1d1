"""The public evidential API against hand-computed values, gradcheck, and extreme logits."""

from __future__ import annotations

import pytest
import torch

from crest.evidential import (
    conflict_degree,
    dirichlet,
    edl_loss,
    edl_terms,
    fuse_average,
    fuse_dempster,
    kl_to_uniform,
    opinion,
)


def test_dirichlet_by_hand():
    d = dirichlet(torch.tensor([[2.0, 0.0, 1.0]]))
    torch.testing.assert_close(d.alpha, torch.tensor([[3.0, 1.0, 2.0]]))
    torch.testing.assert_close(d.strength, torch.tensor([[6.0]]))
    torch.testing.assert_close(d.belief, torch.tensor([[2 / 6, 0.0, 1 / 6]]))
    torch.testing.assert_close(d.uncertainty, torch.tensor([[3 / 6]]))
    torch.testing.assert_close(d.probability, torch.tensor([[3 / 6, 1 / 6, 2 / 6]]))
    torch.testing.assert_close(d.belief.sum(-1, keepdim=True) + d.uncertainty, torch.ones(1, 1))


def test_vacuous_opinion_fused_by_dempster_returns_the_other():
    other = torch.tensor([[5.0, 2.0, 1.0, 1.5]])
    vacuous = torch.ones_like(other)  # no evidence: u = 1
    torch.testing.assert_close(fuse_dempster(vacuous, other), other)
    torch.testing.assert_close(fuse_dempster(other, vacuous), other)


def test_dempster_by_hand():
    # K = 2: a1 = (3, 1): b = (1/2, 0), u = 1/2; a2 = (1, 3): b = (0, 1/2), u = 1/2
    a1, a2 = torch.tensor([[3.0, 1.0]]), torch.tensor([[1.0, 3.0]])
    kappa = 0.5 * 0.5
    b = torch.tensor([[0.5 * 0.5, 0.5 * 0.5]]) / (1 - kappa)
    u = 0.25 / (1 - kappa)
    s = 2 / u
    torch.testing.assert_close(fuse_dempster(a1, a2), b * s + 1)


def test_average_fusion_equals_belief_uncertainty_form():
    g = torch.Generator().manual_seed(0)
    a1, a2 = torch.rand(5, 7, generator=g) * 10 + 1, torch.rand(5, 7, generator=g) * 3 + 1
    o1, o2 = opinion(a1), opinion(a2)
    fused = opinion(fuse_average(a1, a2))
    b = (o1.belief * o2.uncertainty + o2.belief * o1.uncertainty) / (
        o1.uncertainty + o2.uncertainty
    )
    u = 2 * o1.uncertainty * o2.uncertainty / (o1.uncertainty + o2.uncertainty)
    torch.testing.assert_close(fused.belief, b)
    torch.testing.assert_close(fused.uncertainty, u)


def test_kl_is_zero_for_alpha_one_and_positive_otherwise():
    torch.testing.assert_close(kl_to_uniform(torch.ones(3, 5)), torch.zeros(3), atol=1e-6, rtol=0)
    assert (kl_to_uniform(torch.tensor([[2.0, 1.0, 1.0]])) > 0).all()


def test_kl_removes_target_evidence():
    # all evidence on the target: alpha_tilde is all ones, the KL term vanishes
    _, kl = edl_terms(torch.tensor([[50.0, 1.0, 1.0]]), torch.tensor([0]))
    torch.testing.assert_close(kl, torch.zeros(1), atol=1e-6, rtol=0)


def test_edl_loss_by_hand_and_annealing():
    alpha, y = torch.tensor([[3.0, 1.0, 2.0]]), torch.tensor([2])
    ace = torch.digamma(torch.tensor(6.0)) - torch.digamma(torch.tensor(2.0))
    kl = kl_to_uniform(torch.tensor([[3.0, 1.0, 1.0]]))[0]
    torch.testing.assert_close(edl_loss(alpha, y, epoch=0, anneal_epochs=10), ace)
    torch.testing.assert_close(edl_loss(alpha, y, epoch=5, anneal_epochs=10), ace + 0.5 * kl)
    torch.testing.assert_close(edl_loss(alpha, y, epoch=30, anneal_epochs=10), ace + kl)


def test_conflict_is_zero_for_identical_opinions_and_positive_for_opposed():
    a = torch.tensor([[9.0, 1.0, 2.0]])
    torch.testing.assert_close(conflict_degree(a, a), torch.zeros(1))
    opposed = conflict_degree(torch.tensor([[20.0, 1.0]]), torch.tensor([[1.0, 20.0]]))
    p = 0.5 * 2 * (20 / 21 - 1 / 21)
    certainty = (1 - 2 / 21) ** 2
    torch.testing.assert_close(opposed, torch.tensor([p * certainty]))


@pytest.mark.parametrize(
    "fn",
    [
        lambda a, b: fuse_dempster(a, b),
        lambda a, b: fuse_average(a, b),
        lambda a, b: conflict_degree(a, b),
        lambda a, b: edl_loss(a, torch.tensor([0, 2]), epoch=3, anneal_epochs=10),
        lambda a, b: kl_to_uniform(a + b),
    ],
)
def test_gradcheck_float64(fn):
    g = torch.Generator().manual_seed(1)
    a = (torch.rand(2, 4, generator=g, dtype=torch.float64) * 4 + 1).requires_grad_()
    b = (torch.rand(2, 4, generator=g, dtype=torch.float64) * 4 + 1).requires_grad_()
    assert torch.autograd.gradcheck(fn, (a, b))


def test_extreme_logits_stay_finite():
    from crest.evidential import evidence_from_logits

    logits = torch.tensor([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4]], requires_grad=True)
    alpha = evidence_from_logits(logits) + 1
    loss = (
        edl_loss(alpha, torch.tensor([0, 1]), 5, 10)
        + conflict_degree(alpha, alpha.flip(-1)).sum()
        + fuse_dempster(alpha, alpha.flip(-1)).sum() * 1e-6
    )
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()
