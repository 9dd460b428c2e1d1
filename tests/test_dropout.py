"""The CPU dropout: the drop rate, an unbiased mean, reproducibility, gradients, edge cases."""

from __future__ import annotations

import pytest
import torch

from crest.models.dropout import Dropout, cpu_dropout_mask, dropout


@pytest.mark.parametrize("p", [0.1, 0.4, 0.9])
def test_drop_rate_and_mean_are_right(p):
    torch.manual_seed(0)
    mask = cpu_dropout_mask(torch.Size([400, 1001]), p, torch.float32)  # odd size: a partial word
    dropped = (mask == 0).float().mean().item()
    assert abs(dropped - p) < 4e-3  # 400k draws: the standard error is under 1e-3
    assert abs(mask.mean().item() - 1.0) < 1e-2  # inverted dropout keeps E[x]
    kept = mask[mask > 0]
    assert torch.allclose(kept, kept[0].expand_as(kept))
    assert kept[0].item() == pytest.approx(1 / (1 - p), rel=1e-3)


def test_masks_of_different_lanes_are_independent():
    torch.manual_seed(0)
    mask = cpu_dropout_mask(torch.Size([200_000, 4]), 0.5, torch.float32) > 0
    # the four int16 lanes of one random word land in one row here
    both = (mask[:, 0] & mask[:, 3]).float().mean().item()
    assert abs(both - 0.25) < 5e-3
    for lane in range(4):
        assert abs(mask[:, lane].float().mean().item() - 0.5) < 5e-3


def test_seeded_masks_repeat_and_differ_between_calls():
    torch.manual_seed(3)
    a, b = (
        cpu_dropout_mask(torch.Size([64]), 0.4, torch.float32),
        cpu_dropout_mask(torch.Size([64]), 0.4, torch.float32),
    )
    torch.manual_seed(3)
    assert torch.equal(a, cpu_dropout_mask(torch.Size([64]), 0.4, torch.float32))
    assert not torch.equal(a, b)


def test_gradient_is_the_mask():
    torch.manual_seed(0)
    x = torch.randn(50, 30, requires_grad=True)
    out = dropout(x, 0.3, training=True)
    out.sum().backward()
    assert x.grad is not None
    kept = out != 0
    torch.testing.assert_close(out[kept] / x[kept], x.grad[kept])
    assert (x.grad[~kept] == 0).all()


def test_eval_zero_and_one():
    x = torch.randn(10, 10)
    layer = Dropout(0.5).eval()
    assert layer(x) is x
    assert dropout(x, 0.0, training=True) is x
    assert (dropout(x, 1.0, training=True) == 0).all()
    with pytest.raises(ValueError, match=r"dropout probability must be in \[0, 1\]"):
        Dropout(1.5)
