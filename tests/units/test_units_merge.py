"""`slam units merge`: 3 shards from 3 processes == one unsharded run; bad shards refused."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from slamlm.corpora.records import read_records
from slamlm.io import read_jsonl
from slamlm.units.merge import MergeConfig, ShardError, run_units_merge
from slamlm.units.runner import UnitsConfig, read_units, run_units
from slamlm.units.shard import parse_shard, shard_of

N_FILES = 12


def _audio(folder):
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(N_FILES):
        t = np.arange(int((0.4 + 0.05 * i) * 16000)) / 16000
        x = 0.2 * np.sin(2 * np.pi * (120 + 30 * i) * t) + 0.02 * rng.standard_normal(t.size)
        sf.write(folder / f"f{i:02d}.wav", x.astype(np.float32), 16000)
    sf.write(folder / "broken.wav", np.zeros(10, np.float32), 16000)  # too short: a failure


def _slam(*argv):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    env.pop("RANK", None), env.pop("WORLD_SIZE", None)
    return subprocess.Popen([sys.executable, "-m", "slamlm.cli", *argv], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, kmeans16_path):
    """(audio folder, unsharded output, 3-shard output) with the same k-means."""
    d = tmp_path_factory.mktemp("merge")
    _audio(d / "in")
    base = ["units", "extract", str(d / "in"), "--kmeans", str(kmeans16_path),
            "--num-workers", "0"]
    procs = [_slam(*base, "--out", str(d / "sharded"), "--shard", f"{i}/3") for i in range(3)]
    run_units(UnitsConfig(input=str(d / "in"), out=str(d / "one"), kmeans=str(kmeans16_path),
                          num_workers=0))
    for p in procs:
        _, err = p.communicate(timeout=240)
        assert p.returncode == 0, err[-2000:]
    return d / "in", d / "one", d / "sharded"


@pytest.fixture(scope="module")
def kmeans16_path(tmp_path_factory):
    import torch

    from slamlm.units.kmeans import KMeans, save_kmeans

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("km") / "km.safetensors"
    save_kmeans(KMeans(torch.randn(16, 80) * 2, encoder="mel", layer=0), path)
    return path


def _copy(src, dst):
    shutil.copytree(src, dst)
    return dst


def test_three_process_shards_merge_to_the_unsharded_run(runs, tmp_path):
    src, one, sharded = runs
    out = _copy(sharded, tmp_path / "s")
    per_shard = [[r["id"] for r in read_jsonl(out / f"units-{i}of3.jsonl")] for i in range(3)]
    assert all(per_shard) and all(shard_of(x, 3) == i for i, ids in enumerate(per_shard)
                                  for x in ids)
    target = run_units_merge(MergeConfig(folder=str(out), input=str(src)))
    assert target == out / "units.jsonl"
    want = sorted(read_units(one), key=lambda r: r["id"])
    got = sorted(read_units(out), key=lambda r: r["id"])  # shards moved away: each record once
    assert len(want) == N_FILES and got == want
    assert [r["id"] for r in read_jsonl(out / "failures.jsonl")] == ["broken"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["records"] == N_FILES and summary["failed"] == 1 and summary["finished"]
    assert sorted(p.name for p in (out / "shards").glob("summary-*")) == [
        f"summary-{i}of3.json" for i in range(3)]
    # a re-run merges again from shards/ and changes nothing; parquet as well
    run_units_merge(MergeConfig(folder=str(out), format="parquet"))
    assert sorted(read_records(out / "units.parquet"), key=lambda r: r["id"]) == want
    assert not (out / "units.jsonl").exists()  # the earlier merged file of another format


def test_missing_and_half_written_shards_are_refused(runs, tmp_path):
    src, _, sharded = runs
    out = _copy(sharded, tmp_path / "missing")
    for name in ("units-1of3.jsonl", "failures-1of3.jsonl", "summary-1of3.json"):
        (out / name).unlink(missing_ok=True)
    with pytest.raises(ShardError, match=r"shard 1/3 is missing .*--shard 1/3"):
        run_units_merge(MergeConfig(folder=str(out)))
    assert not (out / "units.jsonl").exists()

    out = _copy(sharded, tmp_path / "half")  # killed mid-write: no summary, a cut last line
    (out / "summary-2of3.json").unlink()
    f = out / "units-2of3.jsonl"
    f.write_bytes(f.read_bytes()[:-40])
    with pytest.raises(ShardError, match=r"shard 2/3 is unfinished .*units extract .*"
                                         r"--shard 2/3"):
        run_units_merge(MergeConfig(folder=str(out)))

    out = _copy(sharded, tmp_path / "short")  # finished, then lost a record
    f = out / "units-0of3.jsonl"
    f.write_text("".join(f.read_text().splitlines(keepends=True)[1:]))
    with pytest.raises(ShardError, match=r"shard 0/3 is incomplete: .* says \d+ records"):
        run_units_merge(MergeConfig(folder=str(out)))
    assert not (out / "units.jsonl").exists() and not (out / "shards").exists()

    out = _copy(sharded, tmp_path / "mixed")  # a record of shard 0 inside shard 1
    first = (out / "units-0of3.jsonl").read_text().splitlines(keepends=True)[0]
    with open(out / "units-1of3.jsonl", "a") as fh:
        fh.write(first)
    with pytest.raises(ShardError, match="belongs to shard 0/3, not 1/3"):
        run_units_merge(MergeConfig(folder=str(out)))

    out = _copy(sharded, tmp_path / "lost")  # an input id nowhere: found with --input
    (out / "failures-0of3.jsonl").unlink(missing_ok=True)
    (out / "failures-1of3.jsonl").unlink(missing_ok=True)
    (out / "failures-2of3.jsonl").unlink(missing_ok=True)
    with pytest.raises(ShardError, match=r"1 input ids are neither units nor failures: 'broken'"):
        run_units_merge(MergeConfig(folder=str(out), input=str(src)))


def test_shard_from_slurm_array_and_auto():
    slurm = {"SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_COUNT": "8"}
    assert parse_shard("slurm", slurm) == (5, 8)
    assert parse_shard("auto", slurm) == (5, 8)
    assert parse_shard("auto", {**slurm, "RANK": "1", "WORLD_SIZE": "2"}) == (1, 2)
    assert parse_shard(None, slurm) == (0, 1)  # unsharded unless asked
    assert parse_shard("auto", {}) == (0, 1)
    assert parse_shard("slurm", {"SLURM_ARRAY_TASK_ID": "11", "SLURM_ARRAY_TASK_COUNT": "2",
                                 "SLURM_ARRAY_TASK_MIN": "10"}) == (1, 2)
    with pytest.raises(ValueError, match="SLURM_ARRAY_TASK_ID"):
        parse_shard("slurm", {})
    with pytest.raises(ValueError, match="need 0 <= i < n"):
        parse_shard("slurm", {"SLURM_ARRAY_TASK_ID": "8", "SLURM_ARRAY_TASK_COUNT": "8"})


@pytest.mark.slow
def test_torchrun_two_processes_shard_by_rank_then_merge(runs, tmp_path, kmeans16_path):
    """``torchrun --nproc_per_node 2 -m slamlm.cli units extract`` (shard from RANK/WORLD_SIZE)."""
    src, one, _ = runs
    out = tmp_path / "tr"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    res = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                          "--nproc_per_node=2", "-m", "slamlm.cli", "units", "extract", str(src),
                          "--out", str(out), "--kmeans", str(kmeans16_path), "--num-workers",
                          "0"], env=env, capture_output=True, text=True, timeout=240)
    assert res.returncode == 0, res.stderr[-3000:]
    assert sorted(p.name for p in out.glob("summary-*")) == ["summary-0of2.json",
                                                               "summary-1of2.json"]
    env.pop("RANK", None)
    res = subprocess.run([sys.executable, "-m", "slamlm.cli", "units", "merge", str(out),
                          "--input", str(src)], env=env, capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr[-3000:]
    assert sorted(read_units(out), key=lambda r: r["id"]) == sorted(read_units(one),
                                                                    key=lambda r: r["id"])
