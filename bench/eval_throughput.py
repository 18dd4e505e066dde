"""Eval scoring throughput: packed, document-masked ``token_logprobs`` vs one pair at a time.

Both scorers use the same randomly initialised SpeechLM and the same token sequences, whose
lengths follow sBLIMP after deduplication at 25 Hz (about 20-90 tokens). The naive scorer runs
one unpadded forward per sequence (what a simple per-file loop does). Prints a table of
pairs/s and the largest log-prob difference between the two (they must agree).

    python bench/eval_throughput.py                          # CPU, "small" shape, 200 pairs
    python bench/eval_throughput.py --device cuda --shape slam-358m --pairs 31500
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from slamlm.eval.likelihood import token_logprobs
from slamlm.model import SpeechLM, named_shape


def naive_logprobs(model, seqs: list[np.ndarray], device: str) -> list[np.ndarray]:
    """One forward per sequence, no packing, no padding (bf16 autocast on CUDA)."""
    out = []
    with torch.inference_mode(), torch.autocast(device, torch.bfloat16, enabled=device == "cuda"):
        for s in seqs:
            ids = torch.from_numpy(s).to(device)[None]
            logits = model(ids)[0, :-1].float()
            lp = torch.log_softmax(logits, -1).gather(-1, ids[0, 1:, None])[:, 0]
            out.append(lp.cpu().numpy().astype(np.float64))
    return out


def make_sequences(n_pairs: int, vocab: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    lens = rng.integers(20, 90, 2 * n_pairs)
    return [np.concatenate([[1], rng.integers(3, vocab, n - 2), [2]]) for n in lens]


def timed(fn, device: str):
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = fn()
    if device == "cuda":
        torch.cuda.synchronize()
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--shape", default=None, help="named model shape (default small / slam-358m)")
    ap.add_argument("--pairs", type=int, default=None, help="pairs to score (default 200 / 31500)")
    ap.add_argument("--naive-pairs", type=int, default=None, help="pairs for the naive scorer")
    ap.add_argument("--max-tokens", type=int, default=16384)
    ap.add_argument("--row-lens", default="128,256,512,2048")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    gpu = args.device == "cuda"
    shape = args.shape or ("slam-358m" if gpu else "small")
    n_pairs = args.pairs or (31_500 if gpu else 200)
    n_naive = min(n_pairs, args.naive_pairs or (2000 if gpu else n_pairs))
    torch.manual_seed(0)
    cfg = named_shape(shape, vocab_size=503)
    if gpu:
        import dataclasses

        cfg = dataclasses.replace(cfg, attn_impl="flex")
    model = SpeechLM(cfg).to(args.device, torch.bfloat16 if gpu else torch.float32).eval()
    seqs = make_sequences(n_pairs, 503)
    n_params = sum(p.numel() for p in model.parameters()) / 1e6
    print(f"device {args.device}, shape {shape} ({n_params:.0f}M params), {n_pairs} pairs "
          f"({sum(map(len, seqs))} tokens), naive on {n_naive} pairs, {args.threads} CPU threads")

    token_logprobs(model, seqs[:64], max_tokens=args.max_tokens)  # warm-up (compile on GPU)
    naive, t_naive = timed(lambda: naive_logprobs(model, seqs[:2 * n_naive], args.device), args.device)
    rows = [("naive: one sequence per forward", n_naive / t_naive, 1.0, 0.0)]
    for row_len in [int(x) for x in args.row_lens.split(",")]:
        token_logprobs(model, seqs[:256], max_tokens=args.max_tokens, row_len=row_len)  # warm-up
        ours, t = timed(lambda rl=row_len: token_logprobs(
            model, seqs, max_tokens=args.max_tokens, row_len=rl), args.device)
        diff = max(float(np.abs(a - b).max()) for a, b in zip(ours, naive))
        rows.append((f"packed, row {row_len}, {args.max_tokens} tok/forward", n_pairs / t,
                     (n_pairs / t) / (n_naive / t_naive), diff))
    print(f"\n{'scorer':<44} {'pairs/s':>10} {'speed-up':>9} {'max |dlogp|':>12}")
    for name, pps, speed, diff in rows:
        print(f"{name:<44} {pps:>10.1f} {speed:>8.2f}x {diff:>12.2e}")
    best = max(r[1] for r in rows[1:])
    print(f"\n63 000 sBLIMP files (31 500 pairs) at the best rate: "
          f"{31_500 / best:.1f} s of scoring (units not included)")


if __name__ == "__main__":
    main()
