"""Pretraining batch size x time budget on a finished demo run's own data and benchmarks.

Each variant re-runs the demo's pretraining (its ``pretrain/config.yaml``: same init, tokens,
learning rate and schedule) with another batch size and budget, then scores the checkpoint
with the demo's own eval config (same benchmarks, units cached). One table: steps, tokens,
final validation loss and every benchmark's accuracy (``*`` = learned), the demo's old
setting (batch 16 x 256, 5 minutes) first as the baseline. Run it on an otherwise idle
machine: the budgets are wall-clock.

    python bench/demo_batch_budget.py --run demo_run                  # ~25 min on 2 cores
    python bench/demo_batch_budget.py --run demo_run --variants 16:5m,8:4m --out /tmp/bb
    python bench/demo_batch_budget.py --run demo_run --variants 8:20s,4:20s   # smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

BENCHES = ("swuggy", "sblimp", "ssc", "tsc", "salmon")


def slam(*args: str) -> None:
    """Run one ``slam`` subcommand in this interpreter; stop on failure."""
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    subprocess.run([sys.executable, "-m", "slamlm", *args], check=True, env=env)


def run_variant(run: Path, out: Path, batch: int, budget: str) -> dict:
    """Pretrain + eval one (batch, budget); returns the table row's figures."""
    name = f"b{batch}_{budget}"
    pre = out / name / "pretrain"
    slam("pretrain", "--config", str(run / "pretrain/config.yaml"), "--out", str(pre),
         "--train.batch-size", str(batch), "--train.micro-batch", str(min(batch, 8)),
         "--budget", budget)
    ckpt = sorted((pre / "ckpt").glob("step_*"))[-1]
    slam("eval", "--config", str(run / "eval/pretrain/config.yaml"), "--checkpoint", str(ckpt),
         "--out", str(out / name / "eval"))
    rows = [json.loads(line) for line in (pre / "metrics.jsonl").read_text().splitlines()]
    steps = max((r.get("step", 0) for r in rows), default=0)  # the final validation's step
    context = yaml.safe_load((pre / "config.yaml").read_text())["data"]["context"]
    val = [r["val_loss"] for r in rows if "val_loss" in r]
    res = json.loads((out / name / "eval/results.json").read_text())["benchmarks"]
    return {"variant": f"batch {batch}, {budget}", "steps": steps,
            "tokens": steps * batch * context, "val": val[-1] if val else float("nan"),
            "scores": {b: (100 * res[b]["accuracy"], bool(res[b]["learned"])) for b in BENCHES
                       if b in res}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, default=Path("demo_run"), help="a finished demo run")
    ap.add_argument("--out", type=Path, default=Path("/tmp/demo_batch_budget"))
    ap.add_argument("--variants", default="16:5m,8:4m,8:5m,4:4m",
                    help="BATCH:BUDGET,...; the first is the baseline")
    args = ap.parse_args()
    for need in ("pretrain/config.yaml", "eval/pretrain/config.yaml"):
        if not (args.run / need).is_file():
            sys.exit(f"{args.run / need} is missing: give a finished `slam demo` run folder")
    variants = [(int(b), t) for b, t in (v.split(":") for v in args.variants.split(","))]
    results = [run_variant(args.run, args.out, b, t) for b, t in variants]
    print("\n| variant (batch x 256 tokens, budget) | steps | tokens | val loss | "
          + " | ".join(BENCHES) + " | learned |")
    print("|---" * (5 + len(BENCHES)) + "|")
    for r in results:
        cells = [f"{a:.1f}{'*' if ok else ''}" for a, ok in r["scores"].values()]
        print(f"| {r['variant']} | {r['steps']} | {r['tokens']:,} | {r['val']:.3f} | "
              + " | ".join(cells) + f" | {sum(ok for _, ok in r['scores'].values())} |")
    base = results[0]
    for r in results[1:]:
        print(f"{r['variant']}: val loss {r['val'] - base['val']:+.3f} vs {base['variant']}")


if __name__ == "__main__":
    main()
