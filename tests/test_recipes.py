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
    t, o, s = cfg.train, cfg.optim, cfg.schedule
    assert (o.lr, o.min_lr, o.clip, o.weight_decay, o.betas, o.eps) == (
        1e-3, 5e-5, 0.5, 0.0, (0.9, 0.999), 1e-8)
    assert (s.warmup, s.warmup_steps, s.decay, s.max_steps, s.budget) == (
        0.01, 100, "cosine", 17625, None)  # the paper's "24 h" is 17 625 steps
    assert (t.batch_size, t.precision, cfg.data.context) == (128, "bf16", 1024)
    assert cfg.data.packing == "doc_per_row"  # one whole document per row, as slamkit
    scaled = build_config(PretrainConfig, config_file=CONFIGS / "slam_scaled.yaml")
    assert (scaled.optim.lr, scaled.optim.clip, scaled.train.batch_size,
            scaled.schedule.budget, scaled.schedule.warmup_steps) == (1e-3, 0.5, 128, "48h", 100)


def test_shared_knobs_have_one_name_and_the_old_names_still_work():
    from slamlm.align.runner import DPOConfig
    from slamlm.train.config import PretrainConfig

    old = build_config(PretrainConfig, overrides=["train.lr=2e-3", "train.clip=0.7",
                                                  "train.max_steps=9", "train.budget=null"])
    new = build_config(PretrainConfig, overrides=["optim.lr=2e-3", "optim.clip=0.7",
                                                  "schedule.max_steps=9", "schedule.budget=null"])
    assert old == new and (new.optim.lr, new.optim.clip, new.schedule.max_steps) == (2e-3, 0.7, 9)
    dpo_old = build_config(DPOConfig, base={"grad_clip": 0.3, "save_every": 7, "batch_pairs": 4})
    assert (dpo_old.optim.clip, dpo_old.schedule.ckpt_every, dpo_old.train.batch_size) == (
        0.3, 7, 4)
    with pytest.raises(ValueError, match="conflicts with optim.lr"):
        build_config(PretrainConfig, overrides=["train.lr=1e-3", "optim.lr=2e-3"])


def test_dpo_defaults_are_slamkits():
    from slamlm.align.runner import DPOConfig

    d = DPOConfig()
    assert (d.beta, d.optim.lr, d.optim.min_lr, d.optim.clip, d.train.batch_size) == (
        0.1, 5e-5, 5e-5, 0.5, 8)
    assert (d.schedule.warmup_steps, d.schedule.decay, d.max_auto_bleu) == (100, "constant", 0.3)
