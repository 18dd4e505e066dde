"""Scale: does the cost of ``slam units`` / ``slam pack`` / ``slam eval`` grow linearly with the work?

Each size runs the real CLI (``python -m slamlm ...``) in its own subprocess; the parent
reaps it with ``os.wait4`` and reads that child's wall time and peak RSS (the kernel's
``ru_maxrss`` of the child and its own children, e.g. decoding workers). Inputs are made once
into a cache folder (``/tmp/slam_scale_cache`` by default):

- units: N short (0.3-1 s) 16 kHz WAV files (gliding tone + noise), a path list per size, the
  built-in mel encoder and one k-means (k=100) fitted once on 200 of the files, as the demo
  fits one (fitting reads a fixed sample, so it is left out of the per-size cost);
- pack: N unit records (log-normal lengths around 30 units, 100 units) in one JSONL file;
- eval: N sBLIMP-like pairs of unit lists (``pairs.jsonl``) scored with a random ``tiny`` model.

Printed: a markdown table of stage, size, seconds, per-item microseconds, peak RSS (MB) and the
growth ratio ``(t_big / t_small) / (n_big / n_small)`` (1.0 = linear; below 1 means a fixed
start-up cost is being amortised; above 1 is super-linear). Each process has a fixed start-up
cost (Python + torch import, model/k-means load), included in its seconds.

    python bench/scale.py                 # 1k/10k/50k files, 100k/1M records, 6k/63k pairs
    python bench/scale.py --quick         # reduced sizes (tests/bench/test_scale.py)
    python bench/scale.py --json out.json # also write the rows as JSON
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
FULL = {"units": [1000, 10_000, 50_000], "pack": [100_000, 1_000_000], "eval": [6000, 63_000]}
QUICK = {"units": [300, 1500], "pack": [20_000, 100_000], "eval": [1000, 6000]}
K = 100


def _env() -> dict[str, str]:
    src = str(REPO / "src")
    pp = os.environ.get("PYTHONPATH")
    return {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
            "PYTHONPATH": src + (os.pathsep + pp if pp else "")}


def measure(cmd: list[str], log: Path) -> tuple[float, float]:
    """Run ``cmd`` as a child; (wall seconds, peak RSS MB of it and its children)."""
    with open(log, "w") as f:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=_env(), cwd=REPO)
        _, status, ru = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n"
                           f"{log.read_text()[-3000:]}")
    return wall, ru.ru_maxrss / 1024  # Linux: kB


# ---------------------------------------------------------------- inputs (made once, cached)

def audio_path(cache: Path, i: int) -> Path:
    return cache / "audio" / f"{i // 1000:03d}" / f"f{i:06d}.wav"


def make_audio(cache: Path, n: int) -> None:
    """Files 0..n-1 (skipping those already there): 0.3-1 s tone glide + noise, 16 kHz WAV."""
    import soundfile as sf

    for i in range(n):
        p = audio_path(cache, i)
        if p.exists():
            continue
        rng = np.random.default_rng(i)
        sec = float(rng.uniform(0.3, 1.0))
        t = np.arange(int(sec * 16000)) / 16000
        f0 = rng.uniform(90, 250) * (1 + 0.2 * np.sin(2 * np.pi * rng.uniform(0.5, 3) * t))
        x = 0.3 * np.sin(2 * np.pi * np.cumsum(f0) / 16000) + 0.03 * rng.standard_normal(t.size)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(f".{p.stem}.tmp-{os.getpid()}.wav")
        sf.write(tmp, x.astype(np.float32), 16000, subtype="PCM_16")
        os.replace(tmp, p)


def path_list(cache: Path, n: int) -> Path:
    lst = cache / f"audio_{n}.txt"
    if not lst.exists():
        lst.write_text("".join(f"{audio_path(cache, i)}\n" for i in range(n)))
    return lst


def kmeans_file(cache: Path) -> Path:
    """One k-means (k=100) on the mel frames of 200 files, fitted once."""
    km = cache / "kmeans_mel_k100.safetensors"
    if not km.exists():
        make_audio(cache, 200)
        cmd = [sys.executable, "-m", "slamlm", "units", "fit-kmeans", str(path_list(cache, 200)),
               "--out", str(km), "--k", str(K), "--device", "cpu", "--max-frames", "20000"]
        measure(cmd, cache / "fit.log")
    return km


def units_folder(cache: Path, n: int) -> Path:
    """``n`` unit records in one ``units.jsonl`` (streamed out, never all in memory)."""
    from slamlm.data.synthetic import random_walk

    folder = cache / f"units_{n}"
    f = folder / "units.jsonl"
    if not f.exists():
        folder.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(n)
        tmp = folder / f".units.jsonl.tmp-{os.getpid()}"
        with open(tmp, "w") as out:
            for i in range(n):
                m = max(2, int(rng.lognormal(np.log(30), 0.5)))
                u = random_walk(m, K, rng).tolist()
                out.write(json.dumps({"id": f"utt/{i:07d}", "units": u, "durations": [2] * m,
                                      "n_frames": 2 * m}) + "\n")
        os.replace(tmp, f)
    return folder


def pairs_file(cache: Path, n: int) -> Path:
    """``n`` pairs of unit lists (positive: a random walk; negative: it with a swapped span)."""
    from slamlm.data.synthetic import random_walk

    f = cache / f"pairs_{n}" / "pairs.jsonl"
    if not f.exists():
        f.parent.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(n + 1)
        tmp = f.with_name(f".pairs.tmp-{os.getpid()}")
        with open(tmp, "w") as out:
            for i in range(n):
                m = max(4, int(rng.lognormal(np.log(25), 0.4)))
                pos = random_walk(m, K, rng)
                neg = pos.copy()
                a = int(rng.integers(0, m - 2))
                neg[a:a + 3] = rng.integers(0, K, 3)
                out.write(json.dumps({"id": f"p{i:06d}", "positive": pos.tolist(),
                                      "negative": neg.tolist(), "key": f"k{i // 2}",
                                      "group": {"type": f"t{i % 12}"}}) + "\n")
        os.replace(tmp, f)
    return f


def checkpoint(cache: Path) -> Path:
    ck = cache / "ckpt_tiny_k100"
    if not (ck / "config.json").exists():
        cmd = [sys.executable, "-m", "slamlm", "init", "--out", str(ck), "--shape", "tiny",
               "--units", str(K)]
        measure(cmd, cache / "init.log")
    return ck


# ---------------------------------------------------------------- one size of one stage

def run_size(stage: str, n: int, cache: Path, work: Path) -> tuple[float, float]:
    out = work / f"{stage}_{n}"
    shutil.rmtree(out, ignore_errors=True)
    py = [sys.executable, "-m", "slamlm"]
    if stage == "units":
        cmd = py + ["units", "extract", str(path_list(cache, n)), "--out", str(out), "--kmeans",
                    str(kmeans_file(cache)), "--device", "cpu", "--num-workers", "1"]
    elif stage == "pack":
        cmd = py + ["pack", str(units_folder(cache, n)), "--out", str(out / "tokens"),
                    "--n-units", str(K), "--context", "1024"]
    elif stage == "eval":
        cmd = py + ["eval", str(checkpoint(cache)), "--bench", f"sblimp={pairs_file(cache, n)}",
                    "--out", str(out), "--device", "cpu"]
    else:
        raise ValueError(stage)
    wall, rss = measure(cmd, work / f"{stage}_{n}.log")
    if stage == "units":
        summary = json.loads((out / "summary.json").read_text())
        assert summary["records"] == n, summary
    shutil.rmtree(out, ignore_errors=True)
    return wall, rss


def prepare(stage: str, sizes: list[int], cache: Path) -> None:
    if stage == "units":
        make_audio(cache, max(sizes))
        kmeans_file(cache)
    elif stage == "pack":
        for n in sizes:
            units_folder(cache, n)
    else:
        checkpoint(cache)
        for n in sizes:
            pairs_file(cache, n)


def table(rows: list[dict]) -> str:
    lines = ["| stage | size | seconds | µs / item | peak RSS MB | growth ratio |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        g = "-" if r["growth"] is None else f"{r['growth']:.2f}"
        lines.append(f"| {r['stage']} | {r['size']:,} | {r['seconds']:.1f} | "
                     f"{r['us_per_item']:.0f} | {r['rss_mb']:.0f} | {g} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="reduced sizes (~1 min)")
    ap.add_argument("--stages", default="units,pack,eval")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/slam_scale_cache"))
    ap.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(REPO / "src"))
    sizes = QUICK if args.quick else FULL
    args.cache.mkdir(parents=True, exist_ok=True)
    work = args.cache / f"work-{os.getpid()}"
    work.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    try:
        for stage in args.stages.split(","):
            t0 = time.perf_counter()
            prepare(stage, sizes[stage], args.cache)
            print(f"[{stage}] inputs ready in {time.perf_counter() - t0:.0f} s", flush=True)
            prev = None
            for n in sizes[stage]:
                wall, rss = run_size(stage, n, args.cache, work)
                growth = None if prev is None else (wall / prev[1]) / (n / prev[0])
                rows.append({"stage": stage, "size": n, "seconds": wall,
                             "us_per_item": wall / n * 1e6, "rss_mb": rss, "growth": growth})
                print(f"[{stage}] {n:,}: {wall:.1f} s, {rss:.0f} MB", flush=True)
                prev = (n, wall)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
