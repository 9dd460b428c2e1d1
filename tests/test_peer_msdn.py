"""MSDN (crest.models.msdn): forward and loss against by-hand computations, shapes, settings."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from crest.config import Config, ConfigError, apply_overrides, validate_config
from crest.models.contract import ModelOutput, concat_outputs
from crest.models.msdn import ENTRY, MsdnLoss, MsdnModel, MsdnOutput
from crest.settings.msdn import MsdnConfig

B, D, H, W, A, DW, C = 2, 5, 2, 2, 4, 3, 3


def tiny(cfg: MsdnConfig | None = None, seed: int = 0) -> tuple[MsdnModel, torch.Tensor]:
    g = np.random.default_rng(seed)
    vectors = g.normal(size=(A, DW)).astype(np.float32)
    z = np.abs(g.normal(size=(C, A))).astype(np.float32)
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    torch.manual_seed(seed)
    model = MsdnModel(cfg or MsdnConfig(), D, vectors, z)
    with torch.no_grad():  # nonzero everywhere, so that every map matters
        for p in (model.w_a2v_attention, model.w_v2a_attention, model.w_v2a_score):
            p.copy_(torch.randn_like(p))
    x = torch.randn(B, D, H, W, generator=torch.Generator().manual_seed(seed + 1))
    return model.eval(), x


def by_hand(model: MsdnModel, x: torch.Tensor, z: torch.Tensor) -> dict[str, torch.Tensor]:
    """MSDN written out sample by sample, attribute by attribute, region by region."""
    v = model.vectors().detach().double()
    w1 = model.w_a2v_score.detach().double()
    w2 = model.w_a2v_attention.detach().double()
    w3 = model.w_v2a_attention.detach().double()
    w4 = model.w_v2a_score.detach().double()
    z = z.double()
    w = model.cfg.w_a2v
    out: dict[str, list[torch.Tensor]] = {
        k: [] for k in ("a2v", "v2a", "logits", "emb", "att", "psi")
    }
    for b in range(x.shape[0]):
        f = x[b].double().reshape(D, -1).t()  # (R, D)
        f = f / f.norm(dim=1, keepdim=True)
        r = f.shape[0]
        psi1 = torch.zeros(A, dtype=torch.float64)
        psi2 = torch.zeros(A, dtype=torch.float64)
        att = torch.zeros(A, r, dtype=torch.float64)
        for i in range(A):
            e = torch.stack([v[i] @ w2 @ f[k] for k in range(r)])
            beta = torch.exp(e) / torch.exp(e).sum()
            att[i] = beta
            psi1[i] = sum(beta[k] * (v[i] @ w1 @ f[k]) for k in range(r))
        for k in range(r):
            e = torch.stack([v[i] @ w3 @ f[k] for i in range(A)])
            gamma = torch.exp(e) / torch.exp(e).sum()
            for i in range(A):
                psi2[i] += gamma[i] * (v[i] @ w4 @ f[k])
        s1 = torch.stack([(psi1 * z[c]).sum() for c in range(z.shape[0])])
        s2 = torch.stack([(psi2 * z[c]).sum() for c in range(z.shape[0])])
        out["a2v"].append(s1)
        out["v2a"].append(s2)
        out["logits"].append(w * s1 + (1 - w) * s2)
        out["emb"].append(w * psi1 + (1 - w) * psi2)
        out["att"].append(att)
        out["psi"].append(psi1)
    return {k: torch.stack(t).float() for k, t in out.items()}


def test_forward_matches_by_hand() -> None:
    model, x = tiny(MsdnConfig(w_a2v=0.7))
    out = model(x, return_attention=True)
    ref = by_hand(model, x, model.class_matrix)
    assert isinstance(out, MsdnOutput) and isinstance(out, ModelOutput)
    torch.testing.assert_close(out.branches["a2v"], ref["a2v"], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out.branches["v2a"], ref["v2a"], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out.logits, ref["logits"], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out.embedding, ref["emb"], rtol=1e-5, atol=1e-5)
    assert out.attention is not None and out.attention_scores is not None
    torch.testing.assert_close(out.attention, ref["att"], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out.attention_scores, ref["psi"], rtol=1e-5, atol=1e-5)
    assert out.alpha is None and out.branch_alpha == {}


def test_normalized_vectors_and_init() -> None:
    model, x = tiny(MsdnConfig(normalize_vectors=True, w_a2v=0.5))
    with torch.no_grad():
        model.attribute_vectors.mul_(torch.tensor([[2.0], [3.0], [0.5], [1.0]]))
    ref = by_hand(model, x, model.class_matrix)  # by_hand reads model.vectors(): unit rows
    torch.testing.assert_close(model.vectors().norm(dim=1), torch.ones(A))
    torch.testing.assert_close(model(x).logits, ref["logits"], rtol=1e-5, atol=1e-5)
    fresh = MsdnModel(MsdnConfig(), D, np.ones((A, DW), np.float32), np.eye(C, A, dtype=np.float32))
    # the authors' init: V unit rows, a2v attention and both v2a maps zero → v2a scores 0,
    # a2v attention uniform over the regions
    torch.testing.assert_close(fresh.attribute_vectors.norm(dim=1), torch.ones(A))
    out = fresh(x, return_attention=True)
    assert torch.equal(out.branches["v2a"], torch.zeros(B, C))
    assert out.attention is not None
    torch.testing.assert_close(out.attention, torch.full((B, A, H * W), 1 / (H * W)))
    frozen = MsdnModel(MsdnConfig(trainable_vectors=False), D, np.ones((A, DW)), np.eye(C, A))
    assert not frozen.attribute_vectors.requires_grad


def test_shapes_class_override_grid_and_batch_independence() -> None:
    model, _ = tiny()
    x = torch.randn(3, D, 3, 5)  # another grid
    z2 = torch.rand(7, A)
    out = model(x, class_matrix=z2, return_attention=True)
    assert out.logits.shape == (3, 7) and out.embedding.shape == (3, A)
    assert set(out.branches) == {"a2v", "v2a"}
    assert all(t.shape == (3, 7) for t in out.branches.values())
    assert out.attention is not None and out.attention.shape == (3, A, 15)
    assert out.attention_scores is not None and out.attention_scores.shape == (3, A)
    assert out.class_matrix is z2
    torch.testing.assert_close(out.attention.sum(-1), torch.ones(3, A))
    plain = model(x)
    assert plain.attention is None and plain.attention_scores is None
    assert plain.logits.shape == (3, C) and torch.equal(plain.class_matrix, model.class_matrix)
    # every row depends on its own sample only: pieces give the whole
    joined = concat_outputs([model(x[:1], z2), model(x[1:], z2)])
    torch.testing.assert_close(joined.logits, out.logits, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(joined.branches["v2a"], out.branches["v2a"], rtol=1e-5, atol=1e-6)


def test_bf16_autocast_gives_float_scores_close_to_fp32() -> None:
    model, x = tiny()
    ref = model(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x, return_attention=True)
    assert out.logits.dtype == torch.float32 and out.attention is not None
    assert out.attention.dtype == torch.float32
    torch.testing.assert_close(out.logits, ref.logits, rtol=0.05, atol=0.05)


def loss_by_hand(
    s1: torch.Tensor,
    s2: torch.Tensor,
    target: torch.Tensor,
    seen: list[int],
    unseen: list[int],
    cfg: MsdnConfig,
) -> dict[str, float]:
    """Each term written out with plain Python over samples and classes."""
    play = seen + unseen
    bias = {c: (-1.0 if c in seen else 1.0) for c in play}
    terms: dict[str, float] = {}
    for name, s in (("a2v", s1), ("v2a", s2)):
        ce, mass = 0.0, 0.0
        for b in range(s.shape[0]):
            row = [float(s[b, c]) for c in play]
            ce += -(float(s[b, int(target[b])]) - math.log(sum(math.exp(t) for t in row)))
            shifted = [float(s[b, c]) + bias[c] for c in play]
            norm = sum(math.exp(t) for t in shifted)
            mass += sum(math.exp(float(s[b, c]) + bias[c]) / norm for c in unseen)
        terms[f"ce_{name}"] = ce / s.shape[0]
        terms[f"sc_{name}"] = cfg.lambda_cal * -math.log(mass / s.shape[0])
    gap, jsd = 0.0, 0.0
    for b in range(s1.shape[0]):
        d = [float(s1[b, c]) - float(s2[b, c]) for c in play]
        l2 = math.sqrt(sum(t * t for t in d))
        gap += sum(t * t / l2 * abs(t) for t in d)
        a = [float(s1[b, c]) + bias[c] for c in play]
        q = [float(s2[b, c]) + bias[c] for c in play]
        p_ = [math.exp(t) / sum(math.exp(u) for u in a) for t in a]
        q_ = [math.exp(t) / sum(math.exp(u) for u in q) for t in q]
        m = [(x + y) / 2 for x, y in zip(p_, q_, strict=True)]
        kl_p = sum(x * math.log(x / y) for x, y in zip(p_, m, strict=True))
        kl_q = sum(x * math.log(x / y) for x, y in zip(q_, m, strict=True))
        jsd += (kl_p + kl_q) / 2
    terms["distill_gap"] = cfg.lambda_distill * gap / s1.shape[0]
    terms["distill_jsd"] = cfg.lambda_distill * jsd / s1.shape[0]
    return terms


def test_loss_terms_match_by_hand() -> None:
    cfg = MsdnConfig(lambda_cal=0.3, lambda_distill=0.5)
    g = torch.Generator().manual_seed(3)
    s1 = torch.randn(4, 5, generator=g) * 2
    s2 = torch.randn(4, 5, generator=g)
    seen, unseen = [0, 2, 3], [1, 4]
    target = torch.tensor([0, 3, 2, 3])
    out = MsdnOutput(logits=s1, embedding=torch.zeros(4, A), branches={"a2v": s1, "v2a": s2})
    loss = MsdnLoss(cfg, torch.tensor(seen), torch.tensor(unseen)).to(torch.device("cpu"))
    total, terms = loss(out, target, 0)
    ref = loss_by_hand(s1, s2, target, seen, unseen, cfg)
    assert set(terms) == set(ref)
    for k, value in ref.items():
        assert terms[k].item() == pytest.approx(value, rel=1e-5, abs=1e-7), k
        assert not terms[k].requires_grad
    assert total.item() == pytest.approx(sum(ref.values()), rel=1e-5)
    # the distillation term is off at λ_d = 0, and zero when the sub-nets agree
    off = MsdnLoss(MsdnConfig(lambda_distill=0.0), torch.tensor(seen), torch.tensor(unseen))
    assert "distill_gap" not in off(out, target, 0)[1]
    same = MsdnOutput(logits=s1, embedding=torch.zeros(4, A), branches={"a2v": s1, "v2a": s1})
    _, agreed = loss(same, target, 0)
    assert agreed["distill_gap"].item() == 0.0 and abs(agreed["distill_jsd"].item()) < 1e-7


def test_loss_backpropagates_to_every_map() -> None:
    model, x = tiny()
    model.train()
    loss = ENTRY.loss(Config(), torch.tensor([0, 1]), torch.tensor([2]))
    total, _ = loss(model(x), torch.tensor([0, 1]), 0)
    total.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_settings_validation_names_the_key() -> None:
    assert MsdnConfig().validate("config") == []
    problems = MsdnConfig(lambda_cal=-1.0, w_a2v=1.5, lambda_distill=math.nan).validate("config")
    assert any(p.startswith("config: msdn.lambda_cal=-1.0; expected") for p in problems)
    assert any(p.startswith("config: msdn.lambda_distill=nan; expected") for p in problems)
    assert any(p.startswith("config: msdn.w_a2v=1.5; expected in [0, 1]") for p in problems)
    cfg = apply_overrides(Config(), ["model.name=msdn", "msdn.w_a2v=-0.1"])
    with pytest.raises(ConfigError, match=r"msdn\.w_a2v=-0\.1"):
        validate_config(cfg)


def test_recipes_apply_and_build() -> None:
    assert set(ENTRY.recipes) == {"cub", "sun", "awa2", "synthetic"}
    for name, overrides in ENTRY.recipes.items():
        cfg = apply_overrides(Config(), ["model.name=msdn", *overrides])
        validate_config(cfg, name)
        assert cfg.train.optimizer == "rmsprop" and cfg.train.batch_size == 50
    cub = apply_overrides(Config(), list(ENTRY.recipes["cub"]))
    assert cub.msdn == MsdnConfig()  # the defaults are the authors' CUB recipe
    awa2 = apply_overrides(Config(), list(ENTRY.recipes["awa2"]))
    assert awa2.msdn.w_a2v == 1.0 and awa2.msdn.normalize_vectors and awa2.train.momentum == 0.0
    model = ENTRY.build(Config(), D, np.ones((A, DW), np.float32), np.eye(C, A, dtype=np.float32))
    assert model.name == "msdn" and model.has_attention and model.num_classes() == C
