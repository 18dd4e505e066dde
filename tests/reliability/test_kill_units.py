"""SIGKILL `slam units extract` (mel encoder) mid-run 4 times; resume: no duplicate, none missing."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch
from reliability_helpers import kill_when, run_slam, speechlike_wav

from slamlm.io import read_jsonl
from slamlm.units.fit import FitConfig, run_fit_kmeans
from slamlm.units.runner import UnitsConfig, run_units

N_FILES = 24


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, Path]:
    """23 wavs of 40-43 s (+ one corrupt) and a 16-cluster mel k-means.

    Long files so that one file takes tens of milliseconds even on a fast, idle machine:
    kills then land between a known number of records, whatever the machine's speed."""
    d = tmp_path_factory.mktemp("units_kill")
    for i in range(N_FILES - 1):
        speechlike_wav(d / "in" / f"spk{i % 3}" / f"utt{i:02d}.wav", 40.0 + 0.5 * (i % 7), seed=i)
    (d / "in" / "spk0" / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        km = run_fit_kmeans(FitConfig(input=str(d / "in" / "spk1"), out=str(d / "km.safetensors"),
                                      k=16))
    finally:
        torch.set_num_threads(n)
    return d / "in", Path(km)


def n_lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


@pytest.mark.slow
def test_units_survive_sigkills(corpus, tmp_path):
    src, km = corpus
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run_units(UnitsConfig(input=str(src), out=str(tmp_path / "ref"), kmeans=str(km),
                              num_workers=0, batch_seconds=48))
    finally:
        torch.set_num_threads(n)
    ref = {r["id"]: r for r in read_jsonl(tmp_path / "ref" / "units.jsonl")}
    assert len(ref) == N_FILES - 1

    out = tmp_path / "out"
    shard = out / "units.jsonl"
    args = ["units", "extract", str(src), "--out", str(out), "--kmeans", str(km),
            "--num-workers", "0", "--batch-seconds", "48"]
    rng = random.Random(7)
    kills = 0
    for _ in range(8):  # up to 8 attempts for 4 kills that land mid-run
        before = n_lines(shard)
        killed = kill_when(args, lambda b=before: n_lines(shard) >= b + 1,
                           delay=rng.uniform(0, 0.02))
        if killed and not (out / "summary.json").exists():  # landed mid-run, not after the end
            kills += 1
            assert n_lines(shard) < N_FILES - 1
        if kills == 4 or (out / "summary.json").exists():
            break
    assert kills >= 3, f"only {kills} kills landed mid-run"
    done = run_slam(*args)
    assert done.returncode == 0, done.stderr[-3000:]
    ids = [r["id"] for r in read_jsonl(shard)]
    assert len(ids) == len(set(ids)), "duplicate records after resume"
    got = {r["id"]: r for r in read_jsonl(shard)}
    assert got == ref, "records lost or changed by the kills"
    fails = list(read_jsonl(out / "failures.jsonl"))
    assert [f["id"] for f in fails] == ["spk0/broken"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["records"] == N_FILES - 1 and summary["failed"] == 1
    assert shard.read_bytes().endswith(b"\n")
