"""run_pretrain(): loss falls, exact resume, NaN skipping, checkpoints, schedule, budget, CLI, recipes."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from slamlm.cli import main
from slamlm.config import ConfigError, build_config
from slamlm.data import PackConfig, run_pack
from slamlm.data.synthetic import write_synthetic_units
from slamlm.schedule import lr_at, progress
from slamlm.train import PretrainConfig, parse_duration, run_pretrain
from slamlm.train import pretrain as loop_mod
from slamlm.train.checkpoint import find_latest, read_state

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tokens(tmp_path_factory) -> Path:
    torch.set_num_threads(1)
    d = tmp_path_factory.mktemp("tok")
    write_synthetic_units(d / "units", 120, k=40, mean_len=40, seed=1)
    return run_pack(PackConfig(units=d / "units", out=d / "tokens", n_units=40, context=32,
                               val_fraction=0.1))


def _cfg(tokens: Path, out: Path, **train) -> PretrainConfig:
    t = {"batch_size": 4, "micro_batch": 2, "max_steps": 8, "budget": None, "log_every": 1,
         "eval_every": 0, "ckpt_every": 0, "eval_windows": 8, "lr": 3e-3, "warmup": 0.1,
         "warmup_steps": 0}
    t.update(train)
    return build_config(PretrainConfig, base={"out": str(out), "device": "cpu",
                                              "data": {"tokens": str(tokens), "context": 32},
                                              "train": t})


def _metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


def test_fit_learns_and_writes_checkpoint(tokens, tmp_path):
    last = run_pretrain(_cfg(tokens, tmp_path / "run", max_steps=24, eval_every=12, ckpt_every=12,
                    keep_last=1))
    assert last.name == "step_00000024"
    assert [p.name for p in (tmp_path / "run" / "ckpt").iterdir()] == ["step_00000024"]
    rows = _metrics(tmp_path / "run")
    train = [r for r in rows if "loss" in r]
    vals = [r["val_loss"] for r in rows if "val_loss" in r]
    assert [r["step"] for r in train] == list(range(1, 25))
    assert np.mean([r["loss"] for r in train[-4:]]) < np.mean([r["loss"] for r in train[:4]]) - 0.3
    assert len(vals) == 3 and vals[2] < vals[1] < vals[0] < np.log(43) + 0.5  # steps 0, 12, 24
    assert train[-1]["lr"] == pytest.approx(5e-5) and train[0]["lr"] < 3e-3
    assert all(r["skipped"] == 0 and r["tokens"] == r["step"] * 128 for r in train)
    state = read_state(last)
    assert state["step"] == 24 and state["tokens"] == 24 * 128 and "torch" in state["rng"]
    meta = json.loads((last / "config.json").read_text())
    assert meta["vocab"]["n_units"] == 40 and meta["init"]["kind"] == "random"
    assert (last / "run.yaml").is_file() and (tmp_path / "run" / "config.yaml").is_file()


def test_resume_is_bitwise_exact(tokens, tmp_path):
    run_pretrain(_cfg(tokens, tmp_path / "a"))
    run_pretrain(_cfg(tokens, tmp_path / "b", stop_at_step=4))
    assert find_latest(tmp_path / "b" / "ckpt").name == "step_00000004"
    with open(tmp_path / "b" / "metrics.jsonl", "a") as f:  # rows of a run killed after step 4
        f.write(json.dumps({"step": 5, "loss": 99.0}) + "\n")
    last = run_pretrain(_cfg(tokens, tmp_path / "b"))  # resume auto from step 4, run to 8
    a = [r for r in _metrics(tmp_path / "a") if "loss" in r]
    b = [r for r in _metrics(tmp_path / "b") if "loss" in r]
    assert [r["step"] for r in b] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert [r["loss"] for r in b] == [r["loss"] for r in a]  # bitwise (rounded to 1e-6 in log)
    wa, wb = _weights(tmp_path / "a" / "ckpt" / "step_00000008"), _weights(last)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)  # weights bitwise equal
    assert read_state(last)["data"] == read_state(tmp_path / "a" / "ckpt" / "step_00000008")["data"]


def test_nan_steps_are_skipped_then_fatal(tokens, tmp_path, monkeypatch):
    real = loop_mod._loss
    calls = {"n": 0}

    def poisoned(*a, **k):
        calls["n"] += 1
        out = real(*a, **k)
        return out * float("nan") if calls["n"] in (5, 6) else out  # step 3 (2 micro-batches)

    monkeypatch.setattr(loop_mod, "_loss", poisoned)
    last = run_pretrain(_cfg(tokens, tmp_path / "r", max_steps=5))
    rows = [r for r in _metrics(tmp_path / "r") if "loss" in r]
    assert rows[-1]["skipped"] == 1 and read_state(last)["skipped"] == 1
    assert np.isnan(rows[2]["loss"]) and np.isfinite(rows[3]["loss"])
    assert all(torch.isfinite(w).all() for w in _weights(last).values())

    monkeypatch.setattr(loop_mod, "_loss", lambda *a, **k: real(*a, **k) * float("nan"))
    with pytest.raises(RuntimeError, match="NaN/inf for 3 optimizer steps in a row"):
        run_pretrain(_cfg(tokens, tmp_path / "r2", max_steps=10, max_bad_steps=3))


def test_incomplete_checkpoints_are_skipped(tokens, tmp_path, caplog):
    run = tmp_path / "run"
    run_pretrain(_cfg(tokens, run, max_steps=2, ckpt_every=1, keep_last=5))
    ckpt = run / "ckpt"
    (ckpt / "step_00000009").mkdir()
    (ckpt / "step_00000009" / "state.json").write_text("{}")
    broken = ckpt / "step_00000008"
    broken.mkdir()
    for f in (ckpt / "step_00000002").iterdir():
        broken.joinpath(f.name).write_bytes(f.read_bytes())
    (broken / "model.safetensors").write_bytes(b"garbage")
    with caplog.at_level(logging.WARNING):
        assert find_latest(ckpt).name == "step_00000002"
    assert "step_00000009: missing model.safetensors" in caplog.text
    assert "step_00000008: unreadable" in caplog.text


def test_schedule_and_durations():
    assert parse_duration("24h") == 86400 and parse_duration("1.5m") == 90 and parse_duration(None) is None
    assert parse_duration("4m30s") == 270 and parse_duration("1h 15m") == 4500
    assert parse_duration(" 90 ") == 90
    for bad in ("4m30", "m", "4m-30s", "4 m 30 s x"):
        with pytest.raises(ConfigError):
            parse_duration(bad)
    with pytest.raises(ConfigError, match="not a duration"):
        parse_duration("tomorrow")
    assert progress(10, 100, 0.0, 3600) == 0.1
    assert progress(10, 100, 1800.0, 3600) == 0.5  # time ahead of steps wins
    assert progress(10, 0, 360.0, 3600) == 0.1  # budget only
    assert lr_at(0.005, 1e-3, 5e-5, 0.01) == pytest.approx(5e-4)
    assert lr_at(0.505, 1e-3, 5e-5, 0.01) == pytest.approx((1e-3 + 5e-5) / 2)
    assert lr_at(1.0, 1e-3, 5e-5, 0.01) == pytest.approx(5e-5)


def test_budget_ends_training(tokens, tmp_path):
    last = run_pretrain(_cfg(tokens, tmp_path / "run", max_steps=0, budget="2s", log_every=1000))
    state = read_state(last)
    assert state["elapsed"] >= 2.0 and state["step"] >= 1
    assert [r for r in _metrics(tmp_path / "run") if r.get("final")]


def test_recipes_load():
    for name in ("slam.yaml", "slam_scaled.yaml", "tiny.yaml"):
        cfg = build_config(PretrainConfig, config_file=REPO / "configs" / name)
        assert cfg.train.batch_size % cfg.train.micro_batch == 0
    slam = build_config(PretrainConfig, config_file=REPO / "configs" / "slam.yaml")
    t, o, s = slam.train, slam.optim, slam.schedule
    assert (t.batch_size, t.micro_batch, o.lr, o.min_lr, s.warmup, o.clip, o.weight_decay) == (
        128, 16, 1e-3, 5e-5, 0.01, 0.5, 0.0)
    assert (s.max_steps, s.warmup_steps, s.decay) == (17625, 100, "cosine")  # the paper's "24 h"
    assert parse_duration(s.budget) is None and slam.data.context == 1024
    assert slam.model.shape == "slam-358m" and t.precision == "bf16"
    with pytest.raises(ConfigError, match="batch_size=10 must be a multiple"):
        build_config(PretrainConfig, config_file=REPO / "configs" / "tiny.yaml",
                     overrides=["train.batch_size=10", "train.micro_batch=4"])


def test_cli_pretrain(tokens, tmp_path, capsys):
    rc = main(["pretrain", "--tokens", str(tokens), "--out", str(tmp_path / "run"),
               "--max-steps", "2", "--set", "train.budget=null", "--set", "train.batch_size=2",
               "--set", "train.micro_batch=2", "--set", "data.context=32", "--set", "device=cpu"])
    assert rc == 0
    assert capsys.readouterr().out.strip().endswith("step_00000002")
    rc = main(["pretrain", "--tokens", str(tmp_path / "nope"), "--out", str(tmp_path / "r2"),
               "--max-steps", "2"])
    assert rc == 1 and "run `slam pack" in capsys.readouterr().err


@pytest.mark.gpu
def test_fit_on_gpu_bf16_compile_flex(tokens, tmp_path):
    cfg = _cfg(tokens, tmp_path / "run", max_steps=6)
    cfg = build_config(PretrainConfig, base={
        "out": str(tmp_path / "run"), "device": "cuda", "model": {"attn_impl": "flex"},
        "data": {"tokens": str(tokens), "context": 32},
        "train": {"batch_size": cfg.train.batch_size, "micro_batch": cfg.train.micro_batch,
                  "max_steps": cfg.schedule.max_steps, "log_every": cfg.schedule.log_every,
                  "lr": cfg.optim.lr, "warmup_steps": 0,
                  "budget": None, "precision": "bf16", "compile": True, "eval_every": 3}})
    run_pretrain(cfg)
    rows = _metrics(tmp_path / "run")
    losses = [r["loss"] for r in rows if "loss" in r]
    assert len(losses) == 6 and all(np.isfinite(losses)) and losses[-1] < losses[0]
    assert all(r["mem_gib"] > 0 for r in rows if "loss" in r)
