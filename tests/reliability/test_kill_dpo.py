"""SIGKILL `slam dpo` 5 times at seeded points; re-running resumes through the shared loop.

The resumed run ends with weights bitwise equal to an uninterrupted run, and metrics.jsonl
holds each step once with the uninterrupted run's values (the bug this guards against: DPO
used to append the killed run's rows past its last checkpoint a second time).
"""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch
from reliability_helpers import jsonl_rows, kill_when, run_slam, strip_wall_clock

from slamlm.model import SpeechLM, named_shape
from slamlm.model.checkpoint import save_checkpoint
from slamlm.vocab import UnitVocab

MAX_STEPS = 120
SETS = {"max_steps": MAX_STEPS, "lr": 1e-3, "warmup_steps": 0, "batch_pairs": 4,
        "log_every": 1, "eval_every": 20, "save_every": 3, "keep_last": 2, "threads": 1,
        "heldout_fraction": 0.1, "device": "cpu"}


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    d = tmp_path_factory.mktemp("dpo_kill")
    vocab, rng = UnitVocab(n_units=10), np.random.default_rng(0)
    recs = []
    for i in range(64):
        a = int(rng.integers(10))
        pat = [(a + k) % 10 for k in range(12)]
        recs.append({"id": f"t{i}", "prompt_units": pat[:6], "chosen_units": pat[6:],
                     "rejected_units": rng.integers(0, 10, 6).tolist()})
    (d / "toy.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    torch.manual_seed(0)
    init = save_checkpoint(SpeechLM(named_shape("tiny", vocab_size=vocab.size)),
                           {"vocab": vocab, "units": {"encoder": "mel"}}, d / "init")
    return d / "toy.jsonl", init


def dpo_args(data, init, out) -> list[str]:
    args = ["dpo", str(init), "--data", str(data), "--out", str(out)]
    for k, v in SETS.items():
        args += ["--set", f"{k}={v}"]
    return args


def newest_step(ckpt) -> int:
    steps = [int(p.name[5:]) for p in ckpt.glob("step_*")] if ckpt.is_dir() else []
    return max(steps, default=0)


@pytest.mark.slow
def test_dpo_survives_five_sigkills(toy, tmp_path):
    from safetensors.torch import load_file

    data, init = toy
    assert run_slam(*dpo_args(data, init, tmp_path / "ref")).returncode == 0
    run, rng, kills = tmp_path / "run", random.Random(7), 0
    args = dpo_args(data, init, run)
    for _ in range(5):
        target = newest_step(run / "ckpt") + 3 * rng.randint(1, 3)
        if not kill_when(args, lambda t=target: newest_step(run / "ckpt") >= t,
                         delay=rng.uniform(0, 0.05)):
            break
        kills += 1
    assert kills == 5, f"the run finished after {kills} kills: raise MAX_STEPS"
    done = run_slam(*args)
    assert done.returncode == 0, done.stderr[-3000:]
    final = f"step_{MAX_STEPS:08d}"
    wa = load_file(str(tmp_path / "ref" / "ckpt" / final / "model.safetensors"))
    wb = load_file(str(run / "ckpt" / final / "model.safetensors"))
    assert all(torch.equal(wa[k], wb[k]) for k in wa), "weights differ from the uninterrupted run"
    ra, rb = (jsonl_rows(r / "metrics.jsonl") for r in (tmp_path / "ref", run))
    steps = [r["step"] for r in rb if "reward_accuracy" in r]
    assert steps == list(range(1, MAX_STEPS + 1)), "metrics.jsonl lost or repeated steps"
    assert strip_wall_clock(rb) == strip_wall_clock(ra)
    assert (run / "final.txt").read_text().strip() == final
