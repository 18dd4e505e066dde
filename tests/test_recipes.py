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


def _wav_len(path: Path) -> int:
    import soundfile as sf

    return sf.info(str(path)).frames


def test_spanish_toy_recipe_end_to_end(tmp_path):
    """README "Another language": every stage of configs/spanish_toy.yaml at toy size on CPU
    (bundled Spanish stories and pairs), each stage's output present and valid."""
    import json

    from slamlm.cli import main

    r = tmp_path
    steps = [
        ["synth", "stories", "--text", "builtin:es/stories.txt", "--voices", "es,es+f3",
         "--out", f"{r}/stories", "--workers", "1"],
        ["synth", "benchmarks", "--pairs", "lexical=builtin:es/words.tsv",
         "--pairs", "syntactic=builtin:es/sentences.tsv", "--voice", "es",
         "--out", f"{r}/bench", "--workers", "1"],
        ["units", "fit-kmeans", "--input", f"{r}/stories/manifest.jsonl", "--out",
         f"{r}/km.safetensors", "--encoder", "mel", "--k", "16", "--device", "cpu"],
        ["units", "extract", "--input", f"{r}/stories/manifest.jsonl", "--out", f"{r}/units",
         "--encoder", "mel", "--kmeans", f"{r}/km.safetensors", "--device", "cpu",
         "--num-workers", "0"],
        ["vocoder", "train", "--units", f"{r}/units", "--out", f"{r}/vocoder", "--channels", "32",
         "--layers", "2", "--heldout", "1", "--segment", "0.4", "--device", "cpu",
         "--max-steps", "3", "--train.batch-size", "2", "--train.precision", "fp32",
         "--schedule.eval-every", "0", "--schedule.ckpt-every", "0"],
        ["pack", "--units", f"{r}/units", "--out", f"{r}/tokens", "--n-units", "16",
         "--context", "128", "--val-fraction", "0.2"],
        ["init", "--out", f"{r}/init", "--shape", "tiny", "--units", "16",
         "--units-identity", f"{r}/units/identity.json"],
        ["pretrain", "--config", str(CONFIGS / "spanish_toy.yaml"), "--out", f"{r}/pretrain",
         "--init", f"{r}/init", "--tokens", f"{r}/tokens", "--max-steps", "5",
         "--train.batch-size", "4", "--train.micro-batch", "4", "--device", "cpu",
         "--set", "schedule.eval_every=5", "--set", "schedule.ckpt_every=5"],
    ]
    for args in steps:
        assert main(args) == 0, args
    stories = [json.loads(x) for x in (r / "stories/manifest.jsonl").read_text().splitlines()]
    assert len(stories) == 14 and {s["voice"] for s in stories} == {"es", "es+f3"}
    assert stories[0]["words"][0][0] == "Lucía"  # accents kept, not ASCII-folded
    units = [json.loads(x) for x in (r / "units/units.jsonl").read_text().splitlines()]
    assert len(units) == 14 and all(0 <= u < 16 for rec in units for u in rec["units"])
    assert (r / "vocoder/g_00000003").is_file() and (r / "vocoder/config.json").is_file()
    ckpt = r / "pretrain/ckpt/step_00000005"
    assert (ckpt / "model.safetensors").is_file() and (ckpt / "config.json").is_file()
    assert main(["eval", "--checkpoint", str(ckpt), "--bench", f"swuggy={r}/bench/lexical",
                 "--bench", f"sblimp={r}/bench/syntactic", "--out", f"{r}/eval",
                 "--device", "cpu"]) == 0
    res = json.loads((r / "eval/results.json").read_text())["benchmarks"]
    assert res["swuggy"]["n_pairs"] == 8 and res["sblimp"]["n_pairs"] == 8
    assert all(0.0 <= res[b]["accuracy"] <= 1.0 for b in ("swuggy", "sblimp"))
    prompt = r / "bench/syntactic/dev/b00000_es_1.wav"
    assert main(["generate", "--checkpoint", str(ckpt), "--out", f"{r}/gen", "--prompt",
                 str(prompt), "--prompt-seconds", "1", "--max-new-tokens", "25",
                 "--vocoder", f"hifigan:{r}/vocoder", "--device", "cpu"]) == 0
    gen = json.loads((r / "gen/generations.jsonl").read_text().splitlines()[0])
    n = _wav_len(r / "gen" / gen["wav"])
    n_units = len(gen["prompt_units"]) + len(gen["generated_units"])
    assert gen["vocoder"].startswith("hifigan:") and len(gen["generated_units"]) == 25
    assert n % 640 == 0 and n >= n_units * 640  # >= 1 frame (40 ms) per unit, whole frames
    assert abs(n / 16000 - gen["seconds"]) < 1e-3
