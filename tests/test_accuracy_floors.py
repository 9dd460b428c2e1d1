"""Every registered model learns: a short training on the embedded default world lands far above
the ridge baseline on the same file. A model broken by a speed change (a mask dropped, a branch
detached, a scale lost) passes the contract tests but not these floors.

Measured levels (seed 0–2, `synthetic` recipes, `selection=final`, test split; issue 29):

| model | epochs | test H | CZSL |
|---|---|---|---|
| DAZLE | 3 | 74.6–81.0 | 88.1–94.9 |
| MSDN | 3 | 85.6–87.2 | 95.8–96.5 |
| CREST | 2 | 79.8–80.7 | 90.5–93.5 |
| TransZero | 6 | 77.5–80.3 | 93.2–94.2 |
| ridge baseline | – | 22.3 | 44.2 |

Each floor sits about 10 points of H under the lowest seed measured, and 35 or more above the
ridge baseline: room for seed noise and another CPU's arithmetic, none for a broken model.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from crest.baseline import run_baseline
from crest.config import load_config
from crest.data.synthetic.generator import generate_default_world
from crest.engine.train import train
from crest.models.registry import REGISTRY, recipe

#: model → (epochs, floor on test H, floor on CZSL), in %
FLOORS: dict[str, tuple[int, float, float]] = {
    "dazle": (3, 62.0, 78.0),
    "msdn": (3, 75.0, 88.0),
    "crest": (2, 68.0, 80.0),
    "transzero": (6, 67.0, 84.0),
}

#: every floor is at least this far above the ridge baseline's H on the same file
MARGIN_OVER_RIDGE = 35.0


@pytest.fixture(scope="module")
def default_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_default_world(tmp_path_factory.mktemp("floors") / "default.h5")


def test_every_registered_model_has_a_floor() -> None:
    assert set(FLOORS) == set(REGISTRY)


@pytest.mark.parametrize("name", sorted(FLOORS))
def test_model_trains_to_its_floor_on_the_default_world(
    name: str, default_world: Path, tmp_path: Path
) -> None:
    epochs, floor_h, floor_czsl = FLOORS[name]
    cfg = load_config(
        "synthetic",
        [
            *recipe(name, "synthetic"),
            f"model.name={name}",
            f"data.path={default_world}",
            f"train.epochs={epochs}",
            "train.selection=final",  # the last epoch at the recipe's γ: nothing chosen on test
            f"train.eval_every={epochs}",  # one evaluation, at the end
            "train.seed=0",
        ],
    )
    metrics = train(cfg, tmp_path / "run")
    h, czsl = 100 * metrics["gzsl_h"], 100 * metrics["czsl_acc"]
    assert h >= floor_h and czsl >= floor_czsl, (
        f"{name}: test H {h:.1f} (floor {floor_h}), CZSL {czsl:.1f} (floor {floor_czsl})"
    )


def test_the_floors_are_far_above_the_ridge_baseline(default_world: Path) -> None:
    ridge = run_baseline(default_world)
    for name, (_, floor_h, floor_czsl) in FLOORS.items():
        assert floor_h >= 100 * ridge.gzsl_h + MARGIN_OVER_RIDGE, name
        assert floor_czsl > 100 * ridge.czsl_acc, name
