"""CPU eval in fp32 against bf16 autocast: time and what it changes in the scores.

Scores one checkpoint on a demo's synthetic benchmarks twice in one process, fp32 then bf16
autocast (``EvalConfig.cpu_bf16``), with the unit cache warm (units encoded before timing),
and prints per benchmark: seconds of each, accuracy (mean log-prob) of each, pairs whose
verdict flipped, and the largest |change| of a sequence's mean log-prob.

Usage (after a ``slam demo --out RUN``):

    python bench/eval_precision_cpu.py --run RUN [--model pretrain]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def _ckpt(run: Path, model: str) -> Path:
    if model == "init":
        return run / "init"
    steps = sorted((run / model / "ckpt").glob("step_*"))
    if not steps:
        raise SystemExit(f"no checkpoint under {run / model / 'ckpt'}")
    return steps[-1]


def main(argv: list[str] | None = None) -> None:
    import torch

    from slamlm.demo import benches_in
    from slamlm.device import bf16_is_fast
    from slamlm.eval.runner import EvalConfig, run_eval

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--model", default="pretrain", help="init | pretrain | dpo")
    ap.add_argument("--out", type=Path, default=Path("/tmp/eval_precision_cpu"))
    args = ap.parse_args(argv)
    print(f"CPU bf16 fast (native): {bf16_is_fast(torch.device('cpu'))}")
    ckpt = _ckpt(args.run, args.model)
    benches = benches_in(args.run / "synth" / "bench")
    cache = args.run / "eval" / "cache"
    got = {}
    for tag, bf16 in (("warm", False), ("fp32", False), ("bf16", True)):
        out = args.out / tag
        t0 = time.perf_counter()
        run_eval(EvalConfig(checkpoint=ckpt, benches=benches, out=out, device="cpu",
                            cache=cache, cpu_bf16=bf16))
        secs = time.perf_counter() - t0
        res = json.loads((out / "results.json").read_text())["benchmarks"]
        pairs = {b: [json.loads(x) for x in (out / f"{b}_pairs.jsonl").read_text().splitlines()]
                 for b in res}
        got[tag] = (secs, res, pairs)
    (t32, r32, p32), (t16, r16, p16) = got["fp32"], got["bf16"]
    print("\n| bench | pairs | acc fp32 | acc bf16 | verdicts flipped | max abs d mean logp |")
    print("|---|---|---|---|---|---|")
    for b in r32:
        flips = sum(a["score_mean"] != c["score_mean"] for a, c in zip(p32[b], p16[b]))
        dmax = max(max(abs(a["logp_pos_mean"] - c["logp_pos_mean"]),
                       abs(a["logp_neg_mean"] - c["logp_neg_mean"])) for a, c in zip(p32[b], p16[b]))
        print(f"| {b} | {len(p32[b])} | {100 * r32[b]['accuracy']:.1f} | {100 * r16[b]['accuracy']:.1f} "
              f"| {flips} | {dmax:.4f} |")
    print(f"\nwall, all benchmarks (units cached): fp32 {t32:.1f} s, bf16 {t16:.1f} s, "
          f"ratio {t32 / t16:.2f}x")


if __name__ == "__main__":
    main()
