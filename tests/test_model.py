"""The CREST model: structure of the output, batch independence, geometry bias, the factory."""

from __future__ import annotations

import pytest
import torch

from conftest import tiny_crest
from crest.models import CrestModel
from crest.models.geometry import GeometryBias, relative_geometry_embedding


def _model(**kw) -> CrestModel:
    return tiny_crest(**kw)


def test_outputs_are_consistent():
    model = _model().eval()
    out = model(torch.rand(3, 8, 4, 4), return_attention=True)
    torch.testing.assert_close(out.attention.sum(-1), torch.ones(3, 6))
    mu = model.cfg.mu
    torch.testing.assert_close(out.embedding, mu * out.scores_agt + (1 - mu) * out.scores_vgt)
    torch.testing.assert_close(out.logits, out.embedding @ model.class_matrix.t())
    torch.testing.assert_close(out.logits_vgt, out.scores_vgt @ model.class_matrix.t())
    # average fusion: fused alpha is the evidence average
    torch.testing.assert_close(out.alpha, (out.alpha_vgt + out.alpha_agt) / 2)
    assert (out.vacuity > 0).all() and (out.vacuity <= 1).all()
    assert out.conflict is not None and (out.conflict >= 0).all()


def test_no_sample_sees_another():
    model = _model().eval()
    x = torch.rand(5, 8, 3, 3)
    together = model(x).logits
    alone = torch.cat([model(x[i : i + 1]).logits for i in range(5)])
    torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-5)


def test_class_matrix_can_be_replaced_at_call_time():
    model = _model().eval()
    x = torch.rand(2, 8, 3, 3)
    z_new = torch.rand(4, 6)
    out = model(x, class_matrix=z_new)
    assert out.logits.shape == (2, 4) and out.alpha.shape == (2, 4)
    torch.testing.assert_close(out.logits, out.embedding @ z_new.t())


def test_geometry_bias_depends_on_the_grid_only_and_is_cached():
    emb = relative_geometry_embedding(3, 4)
    assert emb.shape == (12, 12, 64)
    bias = GeometryBias()
    b1 = bias(3, 4)
    assert b1.shape == (12, 12) and (b1 <= 0).all()
    assert len(bias._cache) == 1
    bias(3, 4)
    assert len(bias._cache) == 1
    bias(2, 2)
    assert len(bias._cache) == 2


def test_geometry_changes_the_encoder():
    x = torch.rand(2, 8, 3, 3)
    geo, plain = _model(encoder="geometry").eval(), _model(encoder="plain").eval()
    assert not torch.allclose(geo(x).logits, plain(x).logits)


def test_topk_bank_is_sparse():
    model = _model(bank_topk=2).eval()
    assert model.bank is not None
    q = model.bank.query(torch.rand(3, 6))
    weights = model.bank.match(q)  # the bank's own matching, as its forward uses it
    assert ((weights > 0).sum(-1) == 2).all()
    torch.testing.assert_close(weights.sum(-1), torch.ones(3))
    logits = q @ model.bank.patterns.t()
    top = logits.topk(2, dim=-1)
    torch.testing.assert_close(weights.gather(-1, top.indices), top.values.softmax(-1))
    dense = _model(bank_topk=0).bank
    assert dense is not None and (dense.match(q) > 0).all()  # without top-k every pattern counts


def test_both_branches_off_is_an_error():
    with pytest.raises(ValueError, match=r"at least one of model\.use_vgt and model\.use_agt"):
        _model(use_vgt=False, use_agt=False)


def test_fused_region_embedding_equals_normalise_then_embed():
    from crest.regions import embed_regions, to_regions

    torch.manual_seed(0)
    x = torch.rand(3, 8, 4, 5) * 10
    x[0, :, 0, 0] = 0  # an all-zero region stays finite
    linear = torch.nn.Linear(8, 6)
    torch.testing.assert_close(
        embed_regions(x, linear), linear(to_regions(x)), rtol=1e-5, atol=1e-6
    )


def test_attention_map_is_optional_and_changes_nothing_else():
    model = _model().eval()
    x = torch.rand(4, 8, 3, 3)
    fused = model(x)  # VGT through scaled_dot_product_attention, no map kept
    explicit = model(x, return_attention=True)
    assert fused.attention is None and explicit.attention is not None
    for name in ("logits", "alpha", "vacuity", "scores_vgt", "conflict"):
        torch.testing.assert_close(getattr(fused, name), getattr(explicit, name))


@pytest.mark.parametrize("chunk", [1, 2, 3])
def test_inference_in_pieces_gives_the_whole_batch_result(chunk):
    whole, pieces = _model(inference_chunk=0).eval(), _model(inference_chunk=chunk).eval()
    x = torch.rand(7, 8, 3, 3)  # 7 is not a multiple of any piece size
    with torch.no_grad():
        a, b = whole(x, return_attention=True), pieces(x, return_attention=True)
    for name in ("logits", "alpha", "vacuity", "attention", "conflict", "bank_query"):
        torch.testing.assert_close(getattr(a, name), getattr(b, name), rtol=1e-5, atol=1e-6)
    # with autograd the batch is never split: a training step sees one graph
    calls = []
    inner = pieces._forward

    def counting(*args):
        calls.append(args[0].shape[0])
        return inner(*args)

    pieces._forward = counting  # type: ignore[method-assign]
    with torch.no_grad():
        pieces(x)
    assert calls == [chunk] * (7 // chunk) + ([7 % chunk] if 7 % chunk else [])
    calls.clear()
    out = pieces(x)
    assert out.logits.requires_grad and calls == [7]


def test_inference_chunk_auto_depends_on_the_device():
    model = _model()
    assert model.inference_chunk(torch.device("cpu")) == 16
    assert model.inference_chunk(torch.device("cuda")) == 0
    assert _model(inference_chunk=5).inference_chunk(torch.device("cuda")) == 5


@pytest.mark.parametrize("batch", [1, 16, 37])
def test_region_projection_matches_a_linear_layer_with_gradients(batch):
    from crest.regions import embed_regions, to_regions

    torch.manual_seed(1)
    x = torch.randn(batch, 20, 3, 4)
    fused, reference = torch.nn.Linear(20, 6), torch.nn.Linear(20, 6)
    reference.load_state_dict(fused.state_dict())
    out_fused, out_ref = embed_regions(x, fused), reference(to_regions(x))
    assert out_fused.is_contiguous()
    torch.testing.assert_close(out_fused, out_ref, rtol=1e-5, atol=1e-6)
    g = torch.randn_like(out_ref)
    (out_fused * g).sum().backward()
    (out_ref * g).sum().backward()
    torch.testing.assert_close(fused.weight.grad, reference.weight.grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(fused.bias.grad, reference.bias.grad, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("shared_query", [False, True])
def test_written_out_attention_equals_the_fused_kernel(shared_query):
    from crest.models.blocks import attend

    torch.manual_seed(0)
    q = torch.randn(7, 16) if shared_query else torch.randn(3, 7, 16)
    k, v = torch.randn(3, 5, 16), torch.randn(3, 5, 16)
    bias = None if shared_query else -torch.rand(7, 5)  # a geometry-style logit bias
    fused = attend(q, k, v, bias, 0.0, False, 3)
    # p far below 2⁻¹⁶ keeps every element: the written-out CPU training path without dropout
    written = attend(q, k, v, bias, 1e-9, True, 3)
    assert written.shape == fused.shape == (3, 7, 16)
    torch.testing.assert_close(written, fused, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shared", [True, False])
def test_each_direction_reads_its_own_front_unless_shared(shared: bool) -> None:
    model = _model(shared_front=shared).train()
    out = model(torch.rand(3, 8, 4, 4))
    assert out.logits_agt is not None
    out.logits_agt.sum().backward()  # a loss on AGT's scores alone
    vgt_front = model.region_embed.weight.grad
    if shared:
        assert model.region_embed_agt is None and model.attribute_embed_agt is None
        assert vgt_front is not None and vgt_front.abs().sum() > 0
    else:
        # AGT's gradient reaches its own embeddings and never the ones VGT reads
        assert model.region_embed_agt is not None and model.attribute_embed_agt is not None
        assert vgt_front is None or vgt_front.abs().sum() == 0
        assert model.region_embed_agt.weight.grad.abs().sum() > 0
        assert model.attribute_embed_agt.weight.grad.abs().sum() > 0


def test_a_one_branch_model_has_one_front() -> None:
    for kw in ({"use_agt": False}, {"use_vgt": False}):
        model = _model(shared_front=False, **kw)
        assert model.region_embed_agt is None and model.attribute_embed_agt is None
