"""TransZero (crest.models.transzero): forward and loss against by-hand computations, shapes,
settings validation and recipes."""

from __future__ import annotations

import math
from typing import cast

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from crest.config import Config, load_config
from crest.errors import ConfigError
from crest.models.registry import create_loss, create_model, recipe
from crest.models.transzero import TransZeroLoss, TransZeroModel, TransZeroOutput
from crest.models.transzero.model import DecoderLayer, EncoderLayer, grid_geometry
from crest.settings.transzero import TransZeroConfig

B, DV, H, W, A, C, DW, D, DFF = 2, 5, 2, 2, 4, 3, 6, 4, 6


def tiny_settings(**changes: object) -> TransZeroConfig:
    cfg = TransZeroConfig(d=D, d_ff=DFF)
    for key, value in changes.items():
        setattr(cfg, key, value)
    return cfg


def tiny_arrays(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(A, DW)).astype(np.float32)
    z = np.abs(rng.normal(size=(C, A))).astype(np.float32)
    return vectors, z / np.linalg.norm(z, axis=1, keepdims=True)


def tiny_model(**changes: object) -> TransZeroModel:
    torch.manual_seed(0)
    vectors, z = tiny_arrays()
    model = TransZeroModel(tiny_settings(**changes), DV, vectors, z).eval()
    with torch.no_grad():  # non-trivial LayerNorm affine parameters, so they are exercised
        for name, p in model.named_parameters():
            if "norm" in name:
                p.add_(0.1 * torch.randn_like(p))
    return model


def geometry_by_hand(h: int, w: int) -> torch.Tensor:
    """The relative-geometry embedding written out pair by pair, (R, R, 64)."""
    r = h * w
    out = torch.zeros(r, r, 64, dtype=torch.float64)
    for m in range(r):
        for n in range(r):
            cxm, cym = (m // w + 0.5) / h, (m % w + 0.5) / w
            cxn, cyn = (n // w + 0.5) / h, (n % w + 0.5) / w
            deltas = [
                math.log(max(abs(cxm - cxn) / (1 / h + 1), 1e-3)),
                math.log(max(abs(cym - cyn) / (1 / w + 1), 1e-3)),
                0.0,
                0.0,
            ]
            angles = [100 * dl / 1000 ** (k / 8) for dl in deltas for k in range(8)]
            out[m, n] = torch.tensor([math.sin(a) for a in angles] + [math.cos(a) for a in angles])
    return out


def layer_norm(x: torch.Tensor, norm: torch.nn.LayerNorm) -> torch.Tensor:
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + norm.eps) * norm.weight + norm.bias


def lin(x: torch.Tensor, layer: torch.nn.Linear) -> torch.Tensor:
    return x @ layer.weight.t() + layer.bias


def softmax_attention(q: torch.Tensor, k: torch.Tensor, bias: torch.Tensor | float = 0.0):
    logits = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]) + bias
    e = torch.exp(logits - logits.max(-1, keepdim=True).values)
    return e / e.sum(-1, keepdim=True)


def forward_by_hand(model: TransZeroModel, x: torch.Tensor, z: torch.Tensor, sa: bool):
    """T1-T8 of docs/peers.md written out with plain ops, one sample at a time."""
    enc = cast(EncoderLayer, model.encoder[0])
    dec = cast(DecoderLayer, model.decoder[0])
    gw = model.geometry_weight
    assert gw is not None
    geo = geometry_by_hand(H, W).float()
    g = torch.clamp(geo @ gw.weight[0] + gw.bias, min=0.0)  # (R, R)
    v = model.vectors
    keys = v @ model.w1
    logits, embeds, maps = [], [], []
    for b in range(x.shape[0]):
        regions = x[b].reshape(DV, H * W).t()
        regions = regions / regions.norm(dim=1, keepdim=True)
        h0 = lin(regions, model.embed_regions)
        att = softmax_attention(lin(h0, enc.q), lin(h0, enc.k), -g)
        y = layer_norm(h0 + lin(att @ lin(h0, enc.v), enc.o), enc.norm_attention)
        y = layer_norm(h0 + y, enc.norm_residual)
        ff = lin(torch.clamp(lin(y, enc.ffn.fc1), min=0.0), enc.ffn.fc2)
        memory = layer_norm(y + ff, enc.norm_ffn)
        t = lin(v, model.embed_attributes)
        if sa:
            s = dec.self_attn
            assert s is not None
            a = softmax_attention(lin(t, s.q), lin(t, s.k))
            t = layer_norm(t + lin(a @ lin(t, s.v), s.o), dec.norm1)
        c = dec.cross
        a = softmax_attention(lin(t, c.q), lin(memory, c.k))  # (A, R)
        t = layer_norm(t + lin(a @ lin(memory, c.v), c.o), dec.norm2)
        t = layer_norm(t + lin(torch.clamp(lin(t, dec.ffn.fc1), min=0.0), dec.ffn.fc2), dec.norm3)
        psi = (keys * t).sum(-1)  # (A,)
        embeds.append(psi)
        logits.append(z @ psi)
        maps.append(a)
    return torch.stack(logits), torch.stack(embeds), torch.stack(maps)


def test_geometry_embedding_matches_by_hand() -> None:
    # float32 sines of arguments up to 100·|log 10⁻³| ≈ 691 are good to about 691·2⁻²⁴
    torch.testing.assert_close(
        grid_geometry(2, 3), geometry_by_hand(2, 3).float(), rtol=0, atol=1e-4
    )


@pytest.mark.parametrize("sa", [True, False])
def test_forward_equals_by_hand(sa: bool) -> None:
    model = tiny_model(self_attention=sa)
    x = torch.randn(B, DV, H, W, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = model(x, return_attention=True)
        logits, embeds, maps = forward_by_hand(model, x, model.class_matrix, sa)
    assert isinstance(out, TransZeroOutput)
    torch.testing.assert_close(out.logits, logits, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(out.embedding, embeds, rtol=1e-4, atol=1e-5)
    assert out.attention is not None and out.attention_scores is not None
    torch.testing.assert_close(out.attention, maps, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(out.attention_scores, embeds, rtol=1e-4, atol=1e-5)
    # the contract: no calibration inside forward, no evidence, no branches
    assert out.alpha is None and not out.branches


def test_normalize_vectors_renormalises_each_call() -> None:
    model = tiny_model(normalize_vectors=True)
    with torch.no_grad():
        model.vectors.mul_(3.0)
    norms = model.attribute_vectors().norm(dim=1)
    torch.testing.assert_close(norms, torch.ones(A))
    plain = tiny_model()
    with torch.no_grad():
        plain.vectors.mul_(3.0)
    assert torch.allclose(plain.attribute_vectors().norm(dim=1), torch.full((A,), 3.0))


def test_no_geometry_is_plain_attention() -> None:
    model = tiny_model(geometry=False)
    assert model.geometry_weight is None and model.geometry(H, W, torch.device("cpu")) is None
    assert model(torch.randn(B, DV, H, W)).logits.shape == (B, C)


def test_shapes_with_class_override_and_any_grid() -> None:
    model = tiny_model()
    x = torch.randn(3, DV, 3, 5)
    new = torch.rand(7, A)
    out = model(x, class_matrix=new, return_attention=True)
    assert out.logits.shape == (3, 7)
    assert out.embedding.shape == (3, A)
    assert out.class_matrix.shape == (7, A)
    assert out.attention is not None and out.attention.shape == (3, A, 15)
    assert out.attention_scores is not None and out.attention_scores.shape == (3, A)
    torch.testing.assert_close(out.attention.sum(-1), torch.ones(3, A))
    torch.testing.assert_close(out.logits, out.embedding @ new.t())
    plain = model(x)
    assert plain.attention is None and plain.attention_scores is None


def test_per_sample_outputs_do_not_depend_on_the_batch() -> None:
    model = tiny_model()
    x = torch.randn(4, DV, H, W)
    with torch.no_grad():
        together = model(x).logits
        alone = torch.cat([model(x[i : i + 1]).logits for i in range(4)])
    torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-5)


def test_training_step_and_bf16_autocast() -> None:
    model = tiny_model().train()
    x = torch.randn(B, DV, H, W)
    loss = TransZeroLoss(tiny_settings(), torch.tensor([0, 1]), torch.tensor([2]))
    total, _ = loss(model(x), torch.tensor([0, 1]), 0)
    total.backward()
    assert model.w1.grad is not None and model.vectors.grad is not None
    assert model.geometry_weight is not None and model.geometry_weight.weight.grad is not None
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model.eval()(x, return_attention=True)
    assert out.logits.dtype == torch.float32 and torch.isfinite(out.logits).all()
    # a geometry table first built under inference_mode still trains
    fresh = tiny_model().train()
    with torch.inference_mode():
        fresh(x)
    total, _ = loss(fresh(x), torch.tensor([0, 1]), 0)
    total.backward()


def loss_by_hand(logits, embedding, z, target, seen, unseen, lam, lam_reg, ce_over):
    classes = list(range(C)) if ce_over == "all" else seen
    ce = 0.0
    for i, y in enumerate(target):
        row = [float(logits[i, c]) for c in classes]
        ce += -(row[classes.index(y)] - math.log(sum(math.exp(s) for s in row)))
    ce /= len(target)
    mass = 0.0
    for i in range(len(target)):
        shifted = [float(logits[i, c]) + (1.0 if c in unseen else -1.0) for c in range(C)]
        denominator = sum(math.exp(s) for s in shifted)
        mass += sum(math.exp(shifted[c]) for c in unseen) / denominator
    sc = -math.log(mass / len(target))
    reg = sum(
        (float(embedding[i, a]) - float(z[y, a])) ** 2
        for i, y in enumerate(target)
        for a in range(A)
    ) / (len(target) * A)
    return ce, lam * sc, lam_reg * reg


@pytest.mark.parametrize("ce_over", ["all", "seen"])
def test_loss_terms_equal_by_hand(ce_over: str) -> None:
    g = torch.Generator().manual_seed(2)
    _, z_np = tiny_arrays()
    z = torch.from_numpy(z_np)
    logits = 3 * torch.randn(3, C, generator=g)
    embedding = torch.randn(3, A, generator=g)
    out = TransZeroOutput(logits=logits, embedding=embedding, class_matrix=z)
    seen, unseen = [0, 2], [1]
    target = [2, 0, 2]
    cfg = tiny_settings(lambda_cal=0.3, lambda_reg=0.5, ce_over=ce_over)
    loss = TransZeroLoss(cfg, torch.tensor(seen), torch.tensor(unseen)).to(torch.device("cpu"))
    total, terms = loss(out, torch.tensor(target), epoch=3)
    ce, sc, reg = loss_by_hand(logits, embedding, z, target, seen, unseen, 0.3, 0.5, ce_over)
    assert terms["ce"].item() == pytest.approx(ce, rel=1e-5)
    assert terms["sc"].item() == pytest.approx(sc, rel=1e-5)
    assert terms["reg"].item() == pytest.approx(reg, rel=1e-5)
    assert total.item() == pytest.approx(ce + sc + reg, rel=1e-5)
    assert not any(t.requires_grad for t in terms.values())


def test_loss_without_calibration_has_zero_sc() -> None:
    _, z_np = tiny_arrays()
    out = TransZeroOutput(
        logits=torch.randn(2, C), embedding=torch.randn(2, A), class_matrix=torch.from_numpy(z_np)
    )
    loss = TransZeroLoss(tiny_settings(lambda_cal=0.0), torch.tensor([0, 1]), torch.tensor([2]))
    _, terms = loss(out, torch.tensor([0, 1]), 0)
    assert terms["sc"].item() == 0.0


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("transzero.dropout=1.0", "transzero.dropout=1.0"),
        ("transzero.lambda_reg=-1", "transzero.lambda_reg=-1.0"),
        ("transzero.d=0", "transzero.d=0"),
        ("transzero.encoder_attention_dropout=-0.1", "transzero.encoder_attention_dropout"),
    ],
)
def test_settings_validation_names_the_key(override: str, key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config("synthetic", ["model.name=transzero", override])
    assert TransZeroConfig().validate("config") == []


@pytest.mark.parametrize("dataset", ["cub", "sun", "awa2", "synthetic"])
def test_recipes_load_and_build(dataset: str) -> None:
    cfg = load_config(dataset, list(recipe("transzero", dataset)))
    assert cfg.model.name == "transzero" and cfg.eval.gamma == 2.0
    assert cfg.train.batch_size == 50 and cfg.train.lr > 0
    if dataset == "sun":
        assert (cfg.train.optimizer, cfg.train.momentum, cfg.transzero.d) == ("sgd", 0.9, 128)
        assert not cfg.transzero.self_attention
    if dataset == "awa2":
        assert cfg.transzero.normalize_vectors and cfg.transzero.lambda_cal == 2.0


def test_registry_builds_the_model() -> None:
    from crest.models.contract import ArrayInputs

    cfg = Config()
    cfg.model.name = "transzero"
    cfg.transzero.d, cfg.transzero.d_ff = D, DFF
    vectors, z = tiny_arrays()
    model = create_model(cfg, ArrayInputs(DV, vectors, z, (H, W)))
    assert isinstance(model, TransZeroModel) and model.name == "transzero" and model.has_attention
    assert model.num_classes() == C
    loss = create_loss(cfg, torch.tensor([0, 1]), torch.tensor([2]))
    assert isinstance(loss, TransZeroLoss)
    # W_1 ~ N(0, 1) and the word vectors start unit-length, as in the authors' code
    assert model.vectors.norm(dim=1).sub(1).abs().max() < 1e-5
    assert F.normalize(model.vectors, dim=1).shape == (A, DW)
