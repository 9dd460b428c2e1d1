"""Shared fixtures: the real class-side data, and tiny generated worlds."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from crest.config import ModelConfig
from crest.data.synthetic.generator import WorldSpec, generate_default_world
from crest.models import ArrayInputs, CrestModel, create_model
from crest.paths import data_root

#: --set overrides that make a model small enough to train in seconds in tests
SMALL_MODEL = ["model.d=16", "model.d_ff=32", "model.bank_size=8", "model.bank_dim=4"]

TINY = WorldSpec(
    seed=3,
    classes=12,
    unseen=3,
    val_classes=2,
    parts=3,
    values=4,
    families=3,
    images_min=8,
    images_max=12,
    grid=4,
    feature_dim=16,
    word_dim=20,
)


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (``make test`` runs two workers), one thread per worker and per
    subprocess it starts: two workers then share the cores instead of fighting over them."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ["OMP_NUM_THREADS"] = "1"
        import torch

        torch.set_num_threads(1)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real xlsa17/attributes folder. Missing data fails in CI (it must be there) and skips elsewhere."""
    root = data_root()
    if not (root / "xlsa17").is_dir():
        message = f"real data not found at {root} (set CREST_DATA)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return root


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Never write into the user's cache from tests."""
    os.environ["CREST_CACHE"] = str(tmp_path_factory.mktemp("crest-cache"))


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_default_world(tmp_path_factory.mktemp("worlds") / "tiny.h5", TINY)


@pytest.fixture(scope="session")
def train_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small world that trains in seconds through the real CLI (test_train and its kin)."""
    spec = replace(TINY, seed=1, images_min=16, images_max=20, grid=3)
    return generate_default_world(tmp_path_factory.mktemp("w") / "train.h5", spec)


def tiny_crest(**model_fields: object) -> CrestModel:
    """A CREST model of 16 wide for 8-channel features, 6 attributes and 9 classes, seeded."""
    torch.manual_seed(0)
    cfg = ModelConfig(d=16, d_ff=32, dropout=0.0, bank_size=5, bank_dim=4, **model_fields)
    rng = np.random.default_rng(0)
    return create_model(
        cfg, ArrayInputs(8, rng.normal(size=(6, 10)), np.abs(rng.normal(size=(9, 6))))
    )
