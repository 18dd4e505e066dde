"""Every recipe in configs/ loads into its config class with no unknown keys."""

from pathlib import Path

import pytest

from slamlm.config import build_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def _cls(name: str):
    if name.startswith("demo"):
        from slamlm.demo import DemoConfig

        return DemoConfig
    from slamlm.train.config import PretrainConfig

    return PretrainConfig


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_recipe_loads(path):
    cfg = build_config(_cls(path.name), config_file=path)
    assert cfg is not None


def test_paper_recipe_values():
    from slamlm.train.config import PretrainConfig

    cfg = build_config(PretrainConfig, config_file=CONFIGS / "slam.yaml")
    t = cfg.train
    assert (t.lr, t.min_lr, t.warmup, t.clip, t.batch_size, t.budget) == (1e-3, 5e-5, 0.01, 0.5, 128, "24h")
    assert cfg.data.context == 1024 and t.weight_decay == 0.0
