"""Shared helpers of the reliability suite: run `slam` in a subprocess, kill it, hash outputs."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf

from slamlm.config import build_config
from slamlm.data import PackConfig, run_pack
from slamlm.data.synthetic import write_synthetic_units
from slamlm.train import PretrainConfig

REPO = Path(__file__).resolve().parents[2]

# fields of metrics.jsonl rows that depend on the wall clock / machine, not on the maths
WALL_CLOCK = ("tokens_per_s", "steps_per_s", "mfu", "mem_gib", "elapsed", "wall", "eval_s", "ckpt_s")


def slam_env() -> dict[str, str]:
    """Environment of a `slam` subprocess: offline, one thread, the checkout on the path."""
    env = dict(os.environ)
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", OMP_NUM_THREADS="1",
               MKL_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false", PYTHONHASHSEED="0")
    env["PYTHONPATH"] = str(REPO / "src") + os.pathsep + env.get("PYTHONPATH", "")
    return env


def slam_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "slamlm", "-q", *args]


def run_slam(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run `slam ARGS` to the end; returns the completed process (text stdout/stderr)."""
    return subprocess.run(slam_cmd(*args), env=slam_env(), capture_output=True, text=True,
                          timeout=timeout)


def kill_when(args: list[str], ready: Callable[[], bool], delay: float,
              timeout: float = 60) -> bool:
    """Start `slam ARGS`, wait until ``ready()`` then ``delay`` s, SIGKILL it.

    Returns True when it was killed, False when it finished on its own first.
    """
    p = subprocess.Popen(slam_cmd(*args), env=slam_env(), stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    t0 = time.time()
    try:
        while not ready():
            if p.poll() is not None:
                err = p.stderr.read() if p.stderr else ""
                assert p.returncode == 0, f"slam {args[0]} failed before the kill: {err[-2000:]}"
                return False
            assert time.time() - t0 < timeout, f"slam {args[0]} never got ready"
            time.sleep(0.02)
        time.sleep(delay)
        if p.poll() is not None:
            return False
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=30)
        return True
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        if p.stderr:
            p.stderr.close()


def tree_hashes(root: Path) -> dict[str, str]:
    """sha1 of every file under ``root`` (relative posix path -> hash)."""
    root = Path(root)
    return {p.relative_to(root).as_posix(): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def jsonl_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def strip_wall_clock(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in WALL_CLOCK} for r in rows]


def speechlike_wav(path: Path, seconds: float, sr: int = 16000, channels: int = 1,
                   seed: int = 0) -> Path:
    """A short voiced-like signal (a chirp plus a little noise)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    x = 0.2 * np.sin(2 * np.pi * (150 + 100 * np.sin(3 * t + seed)) * t)
    x = (x + 0.02 * rng.standard_normal(t.size)).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.stack([x] * channels, 1) if channels > 1 else x, sr)
    return path


def synthetic_tokens(root: Path, n_files: int, seed: int) -> Path:
    """``n_files`` synthetic 40-unit files packed into 32-token windows under ``root``."""
    write_synthetic_units(root / "units", n_files, k=40, mean_len=40, seed=seed)
    return run_pack(PackConfig(units=root / "units", out=root / "tokens", n_units=40, context=32,
                               val_fraction=0.1))


def pretrain_cfg(tokens: Path, out: Path, **train) -> PretrainConfig:
    """A tiny CPU pretraining run on ``tokens``; ``train`` overrides/extends the train section."""
    t = {"batch_size": 4, "micro_batch": 2, "budget": None, "warmup_steps": 0, "log_every": 1, "eval_windows": 4,
         "lr": 3e-3, **train}
    return build_config(PretrainConfig, base={"out": str(out), "device": "cpu",
                                              "data": {"tokens": str(tokens), "context": 32},
                                              "train": t})
