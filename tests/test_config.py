"""Configs: packaged per-dataset defaults, YAML files, --set overrides, clear errors."""

from __future__ import annotations

import pytest

from crest.config import ABLATIONS, apply_overrides, config_from_dict, describe_fields, load_config
from crest.errors import ConfigError


@pytest.mark.parametrize(
    ("name", "d", "d_ff", "dropout", "self_attn", "mu"),
    [
        ("cub", 300, 512, 0.4, True, 0.1),
        ("sun", 128, 2048, 0.3, False, 0.4),
        ("awa2", 300, 512, 0.5, True, 0.4),
    ],
)
def test_dataset_configs_hold_the_spec_defaults(name, d, d_ff, dropout, self_attn, mu):
    cfg = load_config(name)
    m = cfg.model
    assert (m.d, m.d_ff, m.dropout, m.attribute_self_attention, m.mu) == (
        d,
        d_ff,
        dropout,
        self_attn,
        mu,
    )
    assert (cfg.train.epochs, cfg.train.batch_size, cfg.train.lr, cfg.train.weight_decay) == (
        200,
        64,
        1e-4,
        1e-4,
    )
    assert (cfg.loss.lambda_cal, cfg.loss.lambda_edl, cfg.eval.gamma) == (0.2, 0.001, 2.0)
    assert cfg.name == name


def test_overrides_are_typed():
    cfg = load_config(
        "cub", ["train.epochs=3", "model.use_agt=false", "data.path=/x.h5", "loss.lambda_cal=0"]
    )
    assert cfg.train.epochs == 3 and cfg.model.use_agt is False and cfg.data.path == "/x.h5"
    assert cfg.loss.lambda_cal == 0.0 and isinstance(cfg.loss.lambda_cal, float)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.epochs=many", "train.epochs: expected int, got 'many'"),
        ("train.epoch=3", "unknown key 'train.epoch'"),
        ("trainer.epochs=3", "unknown section 'trainer'"),
        ("model.fusion=max", "model.fusion='max'; expected one of average, dempster"),
        ("model.use_vgt=maybe", "expected true/false"),
        ("epochs", "is not of the form section.key=value"),
    ],
)
def test_bad_overrides_are_clear_errors(override, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_config(None, [override])


def test_yaml_file_and_round_trip(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("model:\n  d: 64\ntrain:\n  epochs: 7\n")
    cfg = load_config(str(path), ["train.seed=3"])
    assert (cfg.model.d, cfg.train.epochs, cfg.train.seed, cfg.name) == (64, 7, 3, "mine")
    again = config_from_dict(cfg.to_dict())
    assert again == cfg


def test_unknown_config_name():
    with pytest.raises(
        ConfigError,
        match="unknown config 'cubb'; expected a YAML file or one of: awa2, awa2-paper, cub, cub-paper",
    ):
        load_config("cubb")


def test_every_ablation_row_applies():
    for overrides in ABLATIONS.values():
        apply_overrides(load_config(None), overrides)
    assert set(ABLATIONS) == {
        "full",
        "no_agt",
        "no_vgt",
        "no_edl",
        "no_vicl",
        "no_digs",
        "lambda_cal=0",
    }


def test_fields_are_documented():
    text = describe_fields()
    assert "train.selection = 'final'" in text and "loss.lambda_edl = 0.001" in text
    assert all(": " in line and line.split(": ", 1)[1] for line in text.splitlines())
