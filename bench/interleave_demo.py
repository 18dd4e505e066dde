"""Interleaved pretraining demo on synthetic spoken data (CPU, one thread).

Trains the same tiny text-LM-initialised model twice for the same steps: on an interleaved
mix (interleaved=0.6, speech=0.2, text=0.2) and, as the baseline, on speech + text documents
only (no interleaving). Prints per-modality validation loss (of each run's own val split)
and cross-modal StoryCloze accuracy before and after, side by side.

    $ python bench/interleave_demo.py [--steps 600]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "interleave"))

from interleave_helpers import run_demo  # noqa: E402


def main() -> None:
    import torch

    torch.set_num_threads(1)  # the CPU is shared: more threads only spin (measured 10x slower)
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=600)
    args = ap.parse_args()
    runs = {}
    for name, mix in (("interleaved", "interleaved=0.6,speech=0.2,text=0.2"),
                      ("speech+text only", "speech=0.5,text=0.5")):
        with tempfile.TemporaryDirectory() as d:
            t = time.time()
            runs[name] = run_demo(Path(d), steps=args.steps, mix=mix)
            runs[name]["seconds"] = time.time() - t
    print(f"\nper-modality val loss (nats/token), {args.steps} steps, batch 16 x 128 tokens")
    print(f"{'run':18s} {'kind':7s} {'before':>8s} {'after':>8s}")
    for name, r in runs.items():
        for kind in ("unit", "text", "marker", "all"):
            b, a = r["before"]["val"].get(kind), r["after"]["val"].get(kind)
            if b is not None:
                print(f"{name:18s} {kind:7s} {b:8.3f} {a:8.3f}")
    print("\ncross-modal cloze accuracy (mean log-prob; full / restricted softmax)")
    print(f"{'run':18s} {'direction':14s} {'before':>13s} {'after':>13s}")
    for name, r in runs.items():
        for d in ("text>speech", "speech>text", "text>text", "speech>speech"):
            b, a = r["before"]["cloze"][d], r["after"]["cloze"][d]
            print(f"{name:18s} {d:14s} {b['full']['acc_mean']:6.3f}/{b['restricted']['acc_mean']:.3f}"
                  f" {a['full']['acc_mean']:6.3f}/{a['restricted']['acc_mean']:.3f}")
    for name, r in runs.items():
        print(f"{name}: {r['seconds']:.1f} s wall (init + pack + train + eval), "
              f"{r['before']['cloze']['n_pairs']} pairs")


if __name__ == "__main__":
    main()
