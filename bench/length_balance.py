"""Length balance of the synthetic benchmarks: how much the two members of a pair differ in
length, and how often the positive is the shorter one, plus synthesis seconds per 100 pairs.

A content-blind model that prefers the shorter (summed log-prob) or the longer (mean log-prob)
member scores the "shorter-positive share" or its complement; on a length-matched benchmark
both are ~50% and the mean |difference| is a small fraction of the utterance.

Per benchmark (each synthesised on its own, timed): pairs, mean |duration difference| of the
voiced span (seconds and % of the mean duration), share of pairs whose positive is shorter
(ties count half), wall and CPU seconds (all processes) per 100 pairs, and the same two
figures in units: log-mel 25 Hz frames quantised by a
k-means (k=100, as the demo) fitted on the benchmark audio itself, consecutive repeats removed.

    python bench/length_balance.py --n 100 --json /tmp/after.json
    python bench/length_balance.py --n 100 --no-match   # same items, first option: cost baseline
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import time
from pathlib import Path

import numpy as np

BENCHES = {"lexical": "swuggy", "syntactic": "sblimp", "sSC": "ssc", "tSC": "tsc",
           "salmon": "salmon"}


def voiced_seconds(wav: np.ndarray, sr: int = 16000) -> float:
    """Seconds from the first to the last non-silent 5 ms frame."""
    from slamlm.synth.matching import speech_seconds

    return speech_seconds(wav, sr)


def _unit_counts(paths: list[str], k: int = 100, seed: int = 0) -> dict[str, int]:
    """Deduplicated unit count of every file (mel + k-means fitted on these files)."""
    import torch

    from slamlm.audio import load_audio
    from slamlm.units.encoders import MelEncoder
    from slamlm.units.extractor import dedup
    from slamlm.units.kmeans import fit_kmeans

    enc = MelEncoder()
    feats = [enc.features([load_audio(p)])[0] for p in paths]
    x = torch.cat(feats)
    g = torch.Generator().manual_seed(seed)
    sample = x[torch.randperm(len(x), generator=g)[:40_000]]
    km = fit_kmeans(sample, k=min(k, len(sample)), seed=seed, n_init=1, max_iter=50)
    return {p: len(dedup(km.assign(f).numpy())[0]) for p, f in zip(paths, feats)}


def _cpu() -> float:
    """CPU seconds of this process and every finished child (workers, forked engines)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _share_shorter(pos: np.ndarray, neg: np.ndarray) -> float:
    return float(np.mean(np.where(pos < neg, 1.0, np.where(pos == neg, 0.5, 0.0))))


def measure_bench(kind: str, n: int, workers: int, root: Path, seed: int,
                  match: bool = True) -> dict:
    """Synthesise one benchmark (timed) and measure its pairs' length differences."""
    from slamlm.audio import load_audio
    from slamlm.eval.readers import read_benchmark
    from slamlm.synth.benchmarks import BenchConfig, run_benchmarks

    out = root / kind
    c0, t0 = _cpu(), time.perf_counter()
    run_benchmarks(BenchConfig(out=str(out), n=n, seed=seed, workers=workers,
                               benchmarks=(kind,), match_lengths=match))
    wall, cpu = time.perf_counter() - t0, _cpu() - c0
    pairs = read_benchmark(out / kind, BENCHES[kind]).pairs
    paths = sorted({s for p in pairs for s in (p.positive, p.negative)})
    dur = {p: voiced_seconds(load_audio(p)) for p in paths}
    units = _unit_counts(paths, seed=seed)
    pd, nd = (np.array([dur[getattr(p, s)] for p in pairs]) for s in ("positive", "negative"))
    pu, nu = (np.array([units[getattr(p, s)] for p in pairs]) for s in ("positive", "negative"))
    return {"bench": BENCHES[kind], "pairs": len(pairs), "seconds": round(wall, 1),
            "s_per_100_pairs": round(100 * wall / len(pairs), 2),
            "cpu_s_per_100_pairs": round(100 * cpu / len(pairs), 2),
            "mean_dur_s": round(float(np.mean((pd + nd) / 2)), 3),
            "mean_abs_ddur_s": round(float(np.mean(np.abs(pd - nd))), 4),
            "mean_abs_ddur_pct": round(float(100 * np.mean(np.abs(pd - nd) / ((pd + nd) / 2))), 2),
            "pos_shorter_dur": round(_share_shorter(pd, nd), 3),
            "mean_units": round(float(np.mean((pu + nu) / 2)), 1),
            "mean_abs_dunits": round(float(np.mean(np.abs(pu - nu))), 2),
            "pos_fewer_units": round(_share_shorter(pu, nu), 3)}


COLS = ("bench", "pairs", "mean_dur_s", "mean_abs_ddur_s", "mean_abs_ddur_pct", "pos_shorter_dur",
        "mean_units", "mean_abs_dunits", "pos_fewer_units", "s_per_100_pairs",
        "cpu_s_per_100_pairs")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=100, help="items per benchmark (BenchConfig.n)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--only", nargs="*", default=list(BENCHES), help="folders: lexical sSC ...")
    ap.add_argument("--json", default=None, help="also write the rows here")
    ap.add_argument("--no-match", action="store_true",
                    help="first option of every item, no length matching (the cost baseline)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as d:
        rows = [measure_bench(k, args.n, args.workers, Path(d), args.seed, not args.no_match)
                for k in args.only]
    print("| " + " | ".join(COLS) + " |")
    print("|" + "---|" * len(COLS))
    for r in rows:
        print("| " + " | ".join(str(r[c]) for c in COLS) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
