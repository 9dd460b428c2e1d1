"""DAZLE peer model (docs/peers.md): forward and loss against by-hand computations, shapes,
settings validation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from crest.config import Config, apply_overrides, validate_config
from crest.errors import ConfigError
from crest.models.dazle import ENTRY, DazleLoss, DazleModel, DazleOutput
from crest.settings.dazle import DazleConfig

B, D, H, W, A, DW, C = 2, 5, 2, 2, 4, 3, 3


def tiny(cfg: DazleConfig | None = None, seed: int = 0) -> tuple[DazleModel, torch.Tensor]:
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(A, DW)).astype(np.float32)
    z = np.abs(rng.normal(size=(C, A))).astype(np.float32)
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    torch.manual_seed(seed)
    model = DazleModel(cfg or DazleConfig(), D, vectors, z).eval()
    with torch.no_grad():  # W_1 and W_3 start at zero: give them values so the test can fail
        model.W_1.normal_()
        if model.W_3 is not None:
            model.W_3.normal_()
    x = torch.randn(B, D, H, W)
    return model, x


def by_hand(model: DazleModel, x: torch.Tensor, z: torch.Tensor) -> dict[str, torch.Tensor]:
    """The DAZLE equations written out per region: f_r, α, h_a, e_a, β_a, s_c."""
    v = model.vectors.detach()
    if model.normalize_vectors:
        v = v / v.norm(dim=1, keepdim=True)
    out: dict[str, list[torch.Tensor]] = {"logits": [], "emb": [], "alpha": [], "e": []}
    for i in range(x.shape[0]):
        f = x[i].reshape(D, H * W).t()  # (R, D)
        f = f / f.norm(dim=1, keepdim=True)
        alpha = torch.zeros(A, H * W)
        e = torch.zeros(A)
        beta = torch.ones(A)
        for a in range(A):
            logits_r = torch.stack([v[a] @ model.W_1.detach() @ f[r] for r in range(H * W)])
            alpha[a] = torch.exp(logits_r) / torch.exp(logits_r).sum()
            h_a = (alpha[a].unsqueeze(1) * f).sum(0)
            e[a] = v[a] @ model.W_2.detach() @ h_a
            if model.W_3 is not None:
                beta[a] = 1 / (1 + torch.exp(-(v[a] @ model.W_3.detach() @ h_a)))
        emb = beta * e
        out["logits"].append(torch.stack([(z[c] * emb).sum() for c in range(z.shape[0])]))
        out["emb"].append(emb)
        out["alpha"].append(alpha)
        out["e"].append(e)
    return {k: torch.stack(vs) for k, vs in out.items()}


@pytest.mark.parametrize(
    "cfg",
    [
        DazleConfig(),
        DazleConfig(attribute_attention=False),
        DazleConfig(normalize_vectors=True),
    ],
    ids=["default", "no_gate", "normalized_v"],
)
def test_forward_matches_by_hand(cfg: DazleConfig) -> None:
    model, x = tiny(cfg)
    with torch.no_grad():
        model.vectors.mul_(1.7)  # rows no longer unit: normalize_vectors must matter
    out = model(x, return_attention=True)
    ref = by_hand(model, x, model.class_matrix)
    assert isinstance(out, DazleOutput)
    torch.testing.assert_close(out.logits, ref["logits"], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out.embedding, ref["emb"], rtol=1e-5, atol=1e-5)
    assert out.attention is not None and out.attention_scores is not None
    torch.testing.assert_close(out.attention, ref["alpha"], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out.attention_scores, ref["e"], rtol=1e-5, atol=1e-5)
    assert out.alpha is None and out.branch_alpha == {} and out.branches == {}


def test_initialisation_follows_authors() -> None:
    model = DazleModel(DazleConfig(), D, np.ones((A, DW)), np.ones((C, A)) / 2)
    assert torch.count_nonzero(model.W_1) == 0 and model.W_3 is not None
    assert torch.count_nonzero(model.W_3) == 0
    assert model.W_2.std() > 0.5
    torch.testing.assert_close(model.vectors.norm(dim=1), torch.ones(A))
    assert isinstance(model.vectors, torch.nn.Parameter)
    frozen = DazleModel(DazleConfig(trainable_vectors=False), D, np.ones((A, DW)), np.ones((C, A)))
    assert "vectors" in dict(frozen.named_buffers())
    # uniform attention at the start: α = 1/R everywhere
    out = model(torch.randn(B, D, H, W), return_attention=True)
    assert out.attention is not None
    torch.testing.assert_close(out.attention, torch.full((B, A, H * W), 1 / (H * W)))


def test_shapes_with_class_matrix_override_and_any_grid() -> None:
    model, _ = tiny()
    z_new = torch.rand(7, A)
    out = model(torch.randn(3, D, 3, 5), class_matrix=z_new, return_attention=True)
    assert out.logits.shape == (3, 7)
    assert out.embedding.shape == (3, A)
    assert out.class_matrix is z_new
    assert out.attention is not None and out.attention.shape == (3, A, 15)
    assert out.attention_scores is not None and out.attention_scores.shape == (3, A)
    torch.testing.assert_close(out.attention.sum(-1), torch.ones(3, A))
    plain = model(torch.randn(3, D, 3, 5))
    assert plain.attention is None and plain.attention_scores is None
    assert plain.logits.shape == (3, C)


def test_samples_are_independent_and_bf16_runs() -> None:
    model, x = tiny()
    both = model(x).logits
    torch.testing.assert_close(model(x[:1]).logits, both[:1])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x)
    assert out.logits.dtype == torch.float32
    torch.testing.assert_close(out.logits, both, rtol=0.1, atol=0.1)


def test_loss_terms_match_by_hand() -> None:
    torch.manual_seed(1)
    logits = torch.randn(3, 5)
    target = torch.tensor([0, 2, 1])
    seen, unseen = torch.tensor([0, 1, 2]), torch.tensor([3, 4])
    out = DazleOutput(logits=logits, embedding=torch.zeros(3, A))
    cfg = DazleConfig(lambda_cal=0.3)
    total, terms = DazleLoss(cfg, seen, unseen)(out, target, 0)
    # code forms: CE over all 5 classes on raw scores; SC = −log mean_i Σ_u p_iu with ±1 margin
    ce = -sum(logits[i, target[i]] - torch.log(torch.exp(logits[i]).sum()) for i in range(3)) / 3
    shifted = logits + torch.tensor([-1.0, -1.0, -1.0, 1.0, 1.0])
    p = torch.exp(shifted) / torch.exp(shifted).sum(1, keepdim=True)
    sc = -torch.log(p[:, 3:].sum(1).mean())
    torch.testing.assert_close(terms["ce"], ce)
    torch.testing.assert_close(terms["sc"], 0.3 * sc)
    torch.testing.assert_close(total, ce + 0.3 * sc)
    assert not terms["ce"].requires_grad
    # the other forms: CE over seen classes, SC = −mean_i Σ_u log p_iu
    paper = DazleConfig(lambda_cal=0.3, ce_over="seen", sc_form="paper")
    _, pterms = DazleLoss(paper, seen, unseen)(out, target, 0)
    ce_s = (
        -sum(logits[i, target[i]] - torch.log(torch.exp(logits[i, :3]).sum()) for i in range(3)) / 3
    )
    torch.testing.assert_close(pterms["ce"], ce_s)
    torch.testing.assert_close(pterms["sc"], 0.3 * -torch.log(p[:, 3:]).sum(1).mean())


def test_loss_trains_the_model() -> None:
    model, x = tiny()
    loss = DazleLoss(DazleConfig(), torch.tensor([0, 1]), torch.tensor([2]))
    total, _ = loss(model(x), torch.tensor([0, 1]), 0)
    total.backward()
    assert model.W_1.grad is not None and model.W_2.grad is not None
    assert model.vectors.grad is not None and torch.isfinite(total)


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("dazle.lambda_cal=-0.5", "dazle.lambda_cal"),
        ("dazle.lambda_cal=nan", "dazle.lambda_cal"),
    ],
)
def test_settings_validation_names_key(override: str, key: str) -> None:
    cfg = apply_overrides(Config(), ["model.name=dazle", override])
    with pytest.raises(ConfigError, match=key):
        validate_config(cfg)


def test_validate_lists_every_bad_key() -> None:
    bad = DazleConfig(lambda_cal=-1.0, ce_over="some", sc_form="other")
    problems = bad.validate("config")
    assert len(problems) == 3
    assert problems[0].startswith("config: dazle.lambda_cal=-1.0; expected")
    assert any("dazle.ce_over='some'" in p for p in problems)
    assert any("dazle.sc_form='other'" in p for p in problems)
    assert DazleConfig().validate("config") == []


def test_recipes_apply_and_validate() -> None:
    assert set(ENTRY.recipes) == {"cub", "sun", "awa2", "synthetic"}
    for name, sets in ENTRY.recipes.items():
        cfg = apply_overrides(Config(), ["model.name=dazle", *sets])
        validate_config(cfg, name)
        assert cfg.train.optimizer == "rmsprop" and math.isclose(cfg.dazle.lambda_cal, 0.1)
    sun = apply_overrides(Config(), list(ENTRY.recipes["sun"]))
    assert sun.dazle.attribute_attention is False and sun.train.epochs == 100
    cfg = apply_overrides(Config(), list(ENTRY.recipes["cub"]))
    model = ENTRY.build(cfg, D, np.ones((A, DW)), np.ones((C, A)) / 2)
    assert model.name == "dazle" and model.has_attention and model.num_classes() == C
