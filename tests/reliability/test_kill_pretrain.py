"""SIGKILL `slam pretrain` 10 times at seeded random points; resume with --resume auto.

The resumed run must end with weights bitwise equal to an uninterrupted run (the CPU fp32 loop
is deterministic with one thread), every `step_*` folder that ever exists must be complete, and
metrics.jsonl must hold each step once with the uninterrupted run's values.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch
from reliability_helpers import jsonl_rows, kill_when, run_slam, strip_wall_clock, synthetic_tokens

from slamlm.config import build_config
from slamlm.train import PretrainConfig, run_pretrain
from slamlm.train.checkpoint import incomplete_reason, list_checkpoints

MAX_STEPS = 400  # room for 10 kills on a fast machine: each attempt runs <= ~40 steps
TRAIN = {"batch_size": 4, "micro_batch": 2, "max_steps": MAX_STEPS, "budget": None,
         "log_every": 1, "eval_every": 50, "eval_windows": 4, "ckpt_every": 5, "keep_last": 2,
         "lr": 3e-3, "warmup": 0.1, "warmup_steps": 0, "precision": "fp32", "compile": False}


@pytest.fixture(scope="module")
def tokens(tmp_path_factory) -> Path:
    return synthetic_tokens(tmp_path_factory.mktemp("tok"), 120, seed=1)


def pretrain_args(tokens: Path, out: Path) -> list[str]:
    sets = [f"train.{k}={'null' if v is None else str(v).lower()}" for k, v in TRAIN.items()]
    args = ["pretrain", "--tokens", str(tokens), "--out", str(out), "--resume", "auto",
            "--set", "device=cpu", "--set", "data.context=32", "--set", "model.attn_impl=sdpa"]
    for s in sets:
        args += ["--set", s]
    return args


def reference_run(tokens: Path, out: Path) -> Path:
    """The same run in-process, never interrupted."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cfg = build_config(PretrainConfig, base={
            "out": str(out), "device": "cpu", "model": {"attn_impl": "sdpa"},
            "data": {"tokens": str(tokens), "context": 32}, "train": TRAIN})
        return run_pretrain(cfg)
    finally:
        torch.set_num_threads(n)


def newest_step(ckpt: Path) -> int:
    names = list_checkpoints(ckpt)
    return int(names[-1].name.split("_")[1]) if names else 0


def assert_checkpoints_whole(ckpt: Path) -> None:
    """Only complete `step_*` folders carry final names; others are hidden temp names."""
    for p in ckpt.iterdir() if ckpt.is_dir() else []:
        if p.name.startswith("step_"):
            assert incomplete_reason(p) is None, f"{p} is half-written: {incomplete_reason(p)}"
        else:
            assert p.name.startswith("."), f"unexpected entry {p} in the checkpoint folder"


@pytest.mark.slow
def test_pretrain_survives_ten_sigkills(tokens, tmp_path):
    from safetensors.torch import load_file

    ref = reference_run(tokens, tmp_path / "ref")
    run = tmp_path / "run"
    ckpt = run / "ckpt"
    rng = random.Random(1234)
    args = pretrain_args(tokens, run)
    kills, resumed_from = 0, []
    for _ in range(10):
        start = newest_step(ckpt)
        resumed_from.append(start)
        # kill once this attempt wrote 1-3 checkpoints of its own (so every attempt progresses,
        # by a number of steps that does not depend on the machine's speed), a moment later
        target = start + 5 * rng.randint(1, 3)
        if not kill_when(args, lambda t=target: newest_step(ckpt) >= t, delay=rng.uniform(0, 0.05)):
            break
        kills += 1
        assert_checkpoints_whole(ckpt)
    assert kills == 10, f"the run finished after {kills} kills: raise MAX_STEPS"
    assert resumed_from == sorted(resumed_from) and resumed_from[-1] > 0
    done = run_slam(*args)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith(f"step_{MAX_STEPS:08d}")
    assert_checkpoints_whole(ckpt)
    assert not [p for p in ckpt.iterdir() if p.name.startswith(".")], "temp folders left behind"

    final = ckpt / f"step_{MAX_STEPS:08d}"
    wa, wb = load_file(str(ref / "model.safetensors")), load_file(str(final / "model.safetensors"))
    assert wa.keys() == wb.keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wa), "weights differ from the uninterrupted run"
    # metrics: every step once, same numbers as the uninterrupted run (wall-clock fields aside)
    ra, rb = jsonl_rows(tmp_path / "ref" / "metrics.jsonl"), jsonl_rows(run / "metrics.jsonl")
    train_b = [r["step"] for r in rb if "loss" in r]
    assert train_b == list(range(1, MAX_STEPS + 1)), "metrics.jsonl lost or repeated steps"
    assert strip_wall_clock(rb) == strip_wall_clock(ra)
