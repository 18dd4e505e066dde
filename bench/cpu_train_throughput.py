"""CPU training throughput of the demo's model: fp32 vs bf16 autocast vs bf16 + compile.

One process, one run: the demo shape (SmolLM2-135M's first 6 blocks, a 504-token unit
vocabulary, context 256, batch 16 = 2 x 8), the loop's exact step (pretraining objective loss,
clip, AdamW) on packed random documents; beside it this machine's measured matmul peak in fp32
and bf16, so each variant's share of peak is printed too. Warm-up (and compilation) excluded;
the median of timed windows is reported.

    python bench/cpu_train_throughput.py               # ~3 min on 2 cores
    python bench/cpu_train_throughput.py --quick       # ~40 s smoke run
    python bench/cpu_train_throughput.py --depths 2,3,6   # the demo's depth choice (demo_depth):
        # tokens/s per kept SmolLM2 block count at the precision `auto` picks here, vs 6 blocks
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from train_throughput import make_our_step, packed_stream

from slamlm.data.windows import PackedWindows, WindowSampler
from slamlm.model import SpeechLM, named_shape
from slamlm.train.optim import build_optimizer


def matmul_peak(dtype: torch.dtype, n: int = 1024, reps: int = 8) -> float:
    """Measured GFLOP/s of an n x n matmul in ``dtype``."""
    a = torch.randn(n, n).to(dtype)
    a @ a
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ a
    return 2 * n**3 * reps / (time.perf_counter() - t0) / 1e9


def run_variant(name: str, amp: torch.dtype | None, compile_model: bool, args,
                layers: int = 6) -> dict:
    torch.manual_seed(0)
    cfg = named_shape("slam-135m", vocab_size=504, n_layers=layers)  # stream ids < 503
    model = SpeechLM(cfg).train()
    model.set_attn_impl("sdpa")
    wrapped = torch.compile(model) if compile_model else model
    opt = build_optimizer(model, 1e-3, 0.0, (0.9, 0.999), 1e-8)
    data = PackedWindows(packed_stream(args.context * 400, 120, 504), args.context)
    sampler = WindowSampler(data, micro_batch=8, accum=2, seed=0)
    step = make_our_step(model, wrapped, opt, torch.device("cpu"), amp)
    for _ in range(args.warmup):
        step(*sampler.next())
    tok_s = []
    for _ in range(args.windows):
        t0 = time.perf_counter()
        for _ in range(args.steps):
            step(*sampler.next())
        tok_s.append(args.steps * 16 * args.context / (time.perf_counter() - t0))
    flops = model.flops_per_token(args.context)
    rate = statistics.median(tok_s)
    return {"variant": name, "tokens_per_s": rate, "gflops": rate * flops / 1e9,
            "params_m": model.num_params() / 1e6}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--context", type=int, default=256)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--depths", default="", help="e.g. 2,3,6: the depth table instead")
    args = p.parse_args()
    args.warmup, args.windows, args.steps = (1, 2, 2) if args.quick else (2, 3, 4)
    torch.set_num_threads(args.threads)
    if args.depths:
        return depth_table([int(d) for d in args.depths.split(",")], args)
    peak = {"fp32": matmul_peak(torch.float32), "bf16": matmul_peak(torch.bfloat16)}
    rows = [run_variant("fp32", None, False, args),
            run_variant("bf16 autocast", torch.bfloat16, False, args),
            run_variant("bf16 autocast + compile", torch.bfloat16, True, args)]
    base = rows[0]["tokens_per_s"]
    print(f"matmul peak here: fp32 {peak['fp32']:.0f} GFLOP/s, bf16 {peak['bf16']:.0f} GFLOP/s "
          f"({args.threads} threads); model {rows[0]['params_m']:.1f}M params, context "
          f"{args.context}, batch 16")
    print("| variant | tokens/s | x fp32 | GFLOP/s | share of its matmul peak |")
    print("|---|---|---|---|---|")
    for r in rows:
        pk = peak["bf16" if "bf16" in r["variant"] else "fp32"]
        print(f"| {r['variant']} | {r['tokens_per_s']:.0f} | {r['tokens_per_s'] / base:.2f} | "
              f"{r['gflops']:.0f} | {100 * r['gflops'] / pk:.0f}% |")
    np.random.seed(0)


def depth_table(depths: list[int], args) -> None:
    """Tokens/s per kept block count, at the precision ``precision: auto`` picks here."""
    from slamlm.device import bf16_is_fast

    fast = bf16_is_fast(torch.device("cpu"))
    amp = torch.bfloat16 if fast else None
    rows = {d: run_variant(f"{d} blocks", amp, False, args, layers=d) for d in depths}
    base = rows[max(depths)]["tokens_per_s"]
    print(f"precision: {'bf16 autocast' if fast else 'fp32'} (bf16 fast here: {fast}); "
          f"{args.threads} threads, context {args.context}, batch 16")
    print(f"| blocks | params | tokens/s | x {max(depths)} blocks | tokens in 5 min |")
    print("|---|---|---|---|---|")
    for d, r in rows.items():
        print(f"| {d} | {r['params_m']:.1f}M | {r['tokens_per_s']:.0f} | "
              f"{r['tokens_per_s'] / base:.2f} | {r['tokens_per_s'] * 300 / 1e6:.2f}M |")


if __name__ == "__main__":
    main()
