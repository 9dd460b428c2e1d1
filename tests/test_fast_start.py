"""The switches that let CREST learn from its first epoch (docs/method.md §8.8): a centred
front, the initial gains of VGT's value path and AGT's W_4, and the engine's data-dependent
initialisation call."""

from __future__ import annotations

import pytest
import torch

from conftest import tiny_crest
from crest.models import CrestModel
from crest.regions import embed_regions
from test_train import sets

_model = tiny_crest


def test_centered_front_starts_the_embedded_regions_at_zero_mean():
    x = torch.rand(12, 8, 3, 3) + 0.5  # non-negative features share a large common direction
    model = _model(front_init="centered")
    assert model.wants_data_init
    before = embed_regions(x, model.region_embed).mean(dim=(0, 1))
    model.initialize_from_data(x)
    for linear in (model.region_embed, model.region_embed_agt):
        assert linear is not None
        after = embed_regions(x, linear).mean(dim=(0, 1))
        torch.testing.assert_close(after, torch.zeros_like(after), atol=1e-5, rtol=0)
    assert before.abs().max() > 0.05  # it was not centred by chance
    # the default front takes no data and keeps PyTorch's bias
    plain = _model()
    bias = plain.region_embed.bias.clone()
    assert not plain.wants_data_init
    plain.initialize_from_data(x)
    torch.testing.assert_close(plain.region_embed.bias, bias)


def test_gains_scale_the_initial_maps_and_nothing_else():
    base, scaled = _model(), _model(vgt_value_gain=3.0, agt_gain=0.1)
    a, b = base.state_dict(), scaled.state_dict()
    factors = {
        "vgt.decoder.v.weight": 3.0,
        "vgt.decoder.out.weight": 3.0,
        "agt.w4.weight": 0.1,
    }
    for key in a:
        torch.testing.assert_close(b[key], a[key] * factors.get(key, 1.0), msg=key)
    # agt_init=zero wins over the gain
    assert (_model(agt_init="zero", agt_gain=0.1).agt.w4.weight == 0).all()


def test_training_initialises_each_phase_from_its_own_rows(train_world, tmp_path, monkeypatch):
    from crest.cli import main

    calls: list[tuple[int, ...]] = []
    original = CrestModel.initialize_from_data

    def recording(self, feature_map):
        calls.append(tuple(feature_map.shape))
        return original(self, feature_map)

    monkeypatch.setattr(CrestModel, "initialize_from_data", recording)
    args = sets(
        train_world,
        "train.epochs=1",
        "train.selection=val",
        "model.front_init=centered",
        "train.max_steps_per_epoch=1",
    )
    assert main(["train", *args, "--out", str(tmp_path / "run")]) == 0
    assert len(calls) == 2  # the validation phase and the final phase
    assert all(1 <= shape[0] <= 64 and shape[1:] == (16, 3, 3) for shape in calls)
    calls.clear()
    args = sets(
        train_world, "train.epochs=1", "train.max_steps_per_epoch=1", "model.front_init=default"
    )
    assert main(["train", *args, "--out", str(tmp_path / "plain")]) == 0
    assert calls == []  # PyTorch's front reads no data


def test_zero_residual_init_starts_every_block_as_the_identity_and_nothing_else():
    base, zero = _model(), _model(residual_init="zero")
    a, b = base.state_dict(), zero.state_dict()
    zeroed = {k for k in a if k.endswith(("ffn.fc2.weight", "ffn.fc2.bias"))}
    zeroed |= {k for k in a if ("encoder.out." in k or "attribute_attention.out." in k)}
    # every FFN of both encoders, both decoders and the attribute self-attention; the encoders'
    # and the attribute self-attention's output maps; never the cross-attention output maps
    assert len({k for k in zeroed if k.endswith("fc2.weight")}) == 5
    assert not any("decoder.out" in k for k in zeroed)
    for key in a:
        expected = torch.zeros_like(a[key]) if key in zeroed else a[key]
        torch.testing.assert_close(b[key], expected, msg=key)
    # a block is LN(LN(x)) at step 0, and its zeroed layers still get gradients
    assert zero.vgt is not None
    encoder = zero.vgt.encoder.eval()
    x = torch.randn(2, 9, 16)
    torch.testing.assert_close(encoder(x), encoder.norm2(encoder.norm1(x)))
    out = zero.train()(torch.rand(4, 8, 3, 3))
    out.logits.square().sum().backward()
    assert encoder.ffn.fc2.weight.grad is not None and encoder.ffn.fc2.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("value", ["sideways"])
def test_front_init_names_its_choices(value):
    from crest.config import load_config
    from crest.errors import ConfigError

    with pytest.raises(ConfigError, match=r"model\.front_init"):
        load_config(None, [f"model.front_init={value}"])
    with pytest.raises(ConfigError, match=r"model\.residual_init"):
        load_config(None, [f"model.residual_init={value}"])
