"""Two gloo processes (torchrun) reach the same losses as one process at the same global batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from slamlm.data import PackConfig, run_pack
from slamlm.data.synthetic import write_synthetic_units


def _losses(run: Path) -> list[float]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in rows if "loss" in r]


def _args(tokens: Path, out: Path, strategy: str) -> list[str]:
    return ["pretrain", "--tokens", str(tokens), "--out", str(out), "--max-steps", "4",
            "--set", "train.budget=null", "--set", "train.batch_size=4", "--set", "train.warmup_steps=0",
            "--set", "train.micro_batch=1", "--set", "data.context=32", "--set", "device=cpu",
            "--set", "train.log_every=1", "--set", "train.eval_every=0",
            "--set", "train.eval_windows=4", "--set", "train.lr=3e-3",
            "--set", "train.precision=fp32", "--set", f"dist.strategy={strategy}"]


def _pretrain(tokens: Path, out: Path, nproc: int, strategy: str) -> None:
    """``torchrun --nproc_per_node N -m slamlm.cli pretrain ...`` (gloo on CPU)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc_per_node={nproc}", "-m", "slamlm.cli", *_args(tokens, out, strategy)]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert res.returncode == 0, res.stderr[-3000:]


@pytest.fixture(scope="module")
def one_process(tmp_path_factory) -> tuple[Path, list[float]]:
    """Tokens + the losses of a 1-process run (in this process) with accumulation 4."""
    from slamlm.cli import main

    torch.set_num_threads(1)
    d = tmp_path_factory.mktemp("dist")
    write_synthetic_units(d / "units", 60, k=40, mean_len=40, seed=2)
    tokens = run_pack(PackConfig(units=d / "units", out=d / "tokens", n_units=40, context=32,
                                 val_fraction=0.1))
    assert main(_args(tokens, d / "one", "ddp")) == 0
    return tokens, _losses(d / "one")


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_two_processes_match_one(tmp_path, strategy, one_process):
    tokens, one = one_process
    _pretrain(tokens, tmp_path / "two", 2, strategy)
    two = _losses(tmp_path / "two")
    assert len(one) == len(two) == 4
    assert one[0] > one[-1]  # it trains
    assert two == pytest.approx(one, abs=1e-5)
    # rank 0 alone wrote the checkpoint, loadable as a plain model
    from slamlm.model import load_checkpoint

    model, meta = load_checkpoint(tmp_path / "two" / "ckpt" / "step_00000004")
    assert meta["train"]["step"] == 4 and model.config.vocab_size == 43


@pytest.mark.slow
def test_two_nodes_c10d_rendezvous_match_one(tmp_path, one_process):
    """The multi-node recipe of docs/DISTRIBUTED.md, both "nodes" on this machine: two
    ``torchrun --nnodes 2 --node-rank R --rdzv-backend c10d --rdzv-endpoint host:port``."""
    import socket

    tokens, one = one_process
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--node-rank", str(r),
         "--nproc-per-node", "1", "--rdzv-backend", "c10d", "--rdzv-endpoint",
         f"127.0.0.1:{port}", "--rdzv-id", "slamtest", "-m", "slamlm.cli",
         *_args(tokens, tmp_path / "nodes", "ddp")], env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True) for r in (0, 1)]
    for p in procs:
        _, err = p.communicate(timeout=240)
        assert p.returncode == 0, err[-3000:]
    assert _losses(tmp_path / "nodes") == pytest.approx(one, abs=1e-5)
