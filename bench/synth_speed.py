"""Synthetic speech throughput: audio seconds per wall second (x real time), one run.

Rows: 1 worker vs 2 workers (the baseline is 1 worker), both with deterministic (forked,
pristine-engine) synthesis, plus 2 workers without isolation (faster, samples depend on the
utterance history). Full pipeline: story text -> espeak-ng -> word timings -> 16 kHz FLAC.

    python bench/synth_speed.py --n 200
    python bench/synth_speed.py --n 1000 --only 2   # the >= 1000-story corpus timing
"""

from __future__ import annotations

import argparse
import logging
import shutil
import tempfile
import time
from pathlib import Path


def measure(n: int, workers: int, deterministic: bool, root: Path) -> dict:
    from slamlm.io import read_jsonl
    from slamlm.synth.corpus import SynthConfig, run_synth

    out = root / f"w{workers}_{int(deterministic)}"
    t0 = time.perf_counter()
    m = run_synth(SynthConfig(out=str(out), n=n, workers=workers, deterministic=deterministic))
    wall = time.perf_counter() - t0
    audio = sum(r["duration"] for r in read_jsonl(m))
    shutil.rmtree(out)
    return {"workers": workers, "deterministic": deterministic, "n": n, "audio_s": audio,
            "wall_s": wall, "xrt": audio / wall}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=200, help="stories per row")
    ap.add_argument("--only", type=int, default=None, help="run only this worker count")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    rows_spec = [(1, True), (2, True), (2, False)]
    if args.only:
        rows_spec = [r for r in rows_spec if r[0] == args.only and r[1]]
    with tempfile.TemporaryDirectory() as d:
        rows = [measure(args.n, w, det, Path(d)) for w, det in rows_spec]
    base = rows[0]["xrt"]
    print("\n| workers | deterministic | stories | audio (s) | wall (s) | x real time | vs row 1 |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['workers']} | {r['deterministic']} | {r['n']} | {r['audio_s']:.0f} | "
              f"{r['wall_s']:.1f} | {r['xrt']:.1f} | {r['xrt'] / base:.2f}x |")


if __name__ == "__main__":
    main()
