"""DPO step throughput: cached reference + packed policy (ours) vs TRL-style on-the-fly reference.

All variants train the same randomly initialised SpeechLM on the same random unit triplets
(prompt / completion lengths like deduplicated 25 Hz SpokenSwag clips, scaled by the flags):

* ``trl``: each step runs the frozen reference (no grad) and the policy, each as one forward
  over the right-padded ``[chosen; rejected]`` batch (TRL's concatenated forward), full
  log-softmax over the padded logits.
* ``cached+padded``: reference log-probs precomputed once; policy as in ``trl``.
* ``cached+packed`` (ours, ``slam dpo`` on CUDA): reference precomputed; policy sequences
  packed into document-masked rows of ``--row-tokens``, log-softmax only at completions.
* ``cached+rows0`` (ours, ``slam dpo`` on CPU, ``row_tokens=0``): one sequence per row, plain
  causal attention (no mask), log-softmax only at completion positions.

The variants run interleaved step by step (so load changes on a shared machine hit all of
them) and the median step time is reported, plus the one-time reference pass of ours and the
largest log-prob difference between the packed and padded forwards (they must agree).

    python bench/dpo_throughput.py                                   # CPU, "small" shape
    python bench/dpo_throughput.py --device cuda --shape slam-358m --batch-pairs 32 \
        --prompt-len 60:150 --completion-len 60:200
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import numpy as np
import torch

from slamlm.align.data import make_pair
from slamlm.align.loss import dpo_loss
from slamlm.align.packing import sequence_logps
from slamlm.align.reference import compute_logps, pack_pairs, pair_sequences
from slamlm.model import SpeechLM, named_shape
from slamlm.vocab import UnitVocab


def make_pairs(n: int, prompt: tuple[int, int], comp: tuple[int, int], seed: int = 0):
    rng = np.random.default_rng(seed)
    vocab = UnitVocab(n_units=500)
    r = lambda lo_hi: rng.integers(0, 500, rng.integers(lo_hi[0], lo_hi[1] + 1))  # noqa: E731
    return [make_pair(f"p{i}", r(prompt), r(comp), r(comp), vocab) for i in range(n)], vocab


def padded_logps(model, pairs, device) -> torch.Tensor:
    """TRL-style: right-padded (2N, T) batch, no doc ids, log-softmax over every position."""
    seqs, starts = pair_sequences(pairs)
    width = max(len(s) for s in seqs)
    ids = torch.zeros(len(seqs), width, dtype=torch.long)
    mask = torch.zeros(len(seqs), width, dtype=torch.bool)
    for i, (s, st) in enumerate(zip(seqs, starts)):
        ids[i, :len(s)] = torch.from_numpy(s)
        mask[i, st:len(s)] = True
    ids, mask = ids.to(device), mask.to(device)
    logits = model(ids)[:, :-1].float()  # causal: right padding is never attended to
    lp = torch.log_softmax(logits, -1).gather(2, ids[:, 1:, None]).squeeze(2)
    return (lp * mask[:, 1:]).sum(1)


def step(variant: str, model, reference, opt, pairs, ref_cached, device, amp,
         row_tokens: int) -> None:
    with torch.autocast(device.type, torch.bfloat16, enabled=amp):
        if variant == "trl":
            with torch.no_grad():
                ref = padded_logps(reference, pairs, device)
            rc, rr = ref[0::2], ref[1::2]
        else:
            ref = torch.from_numpy(ref_cached).to(device)
            rc, rr = ref[:, 0], ref[:, 1]
        if variant == "cached+packed":
            lp = sequence_logps(model, pack_pairs(pairs, row_tokens=row_tokens).to(device))
        elif variant == "cached+rows0":  # ours with row_tokens=0: padded, gather-only softmax
            lp = sequence_logps(model, pack_pairs(pairs, row_tokens=0).to(device))
        else:
            lp = padded_logps(model, pairs, device)
    loss, _ = dpo_loss(lp[0::2], lp[1::2], rc, rr, beta=0.1)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    opt.zero_grad(set_to_none=True)


def sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--shape", default="small")
    ap.add_argument("--batch-pairs", type=int, default=8)
    ap.add_argument("--steps", type=int, default=8, help="timed steps per variant")
    ap.add_argument("--prompt-len", default="20:60", help="min:max prompt units")
    ap.add_argument("--completion-len", default="20:100", help="min:max completion units")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--row-tokens", type=int, default=1024, help="packed row length (ours)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available()
                          else "cpu" if args.device == "auto" else args.device)
    amp = device.type == "cuda"
    span = lambda s: tuple(int(x) for x in s.split(":"))  # noqa: E731
    n_steps = args.steps + 1  # first step is warm-up
    pairs, vocab = make_pairs(args.batch_pairs * n_steps, span(args.prompt_len),
                              span(args.completion_len))
    torch.manual_seed(0)
    base = SpeechLM(named_shape(args.shape, vocab_size=vocab.size)).to(device)
    reference = copy.deepcopy(base).eval()
    with torch.autocast(device.type, torch.bfloat16, enabled=amp):
        ref_cached = compute_logps(reference, pairs, 8192, device, args.row_tokens)
    with torch.no_grad(), torch.autocast(device.type, torch.bfloat16, enabled=amp):
        check = padded_logps(reference, pairs[:8], device).float().cpu().numpy()
    max_diff = float(np.abs(check - ref_cached[:8].reshape(-1)).max())
    ref_rows = 0 if device.type == "cpu" else args.row_tokens  # slam dpo's auto choice
    variants = ["trl", "cached+padded", "cached+packed", "cached+rows0"]
    models = {v: copy.deepcopy(base).train() for v in variants}
    fused = device.type == "cuda"
    opts = {v: torch.optim.AdamW(m.parameters(), lr=5e-5, fused=fused, foreach=not fused)
            for v, m in models.items()}
    times: dict[str, list[float]] = {v: [] for v in [*variants, "ref pass"]}
    for s in range(n_steps):
        batch = pairs[s * args.batch_pairs:(s + 1) * args.batch_pairs]
        idx = slice(s * args.batch_pairs, (s + 1) * args.batch_pairs)
        for v in variants:
            sync(device)
            t = time.perf_counter()
            step(v, models[v], reference, opts[v], batch, ref_cached[idx], device, amp,
                 args.row_tokens)
            sync(device)
            if s:
                times[v].append(time.perf_counter() - t)
        sync(device)  # ours pays a one-time reference pass: time it on the same batches
        t = time.perf_counter()
        with torch.autocast(device.type, torch.bfloat16, enabled=amp):
            compute_logps(reference, batch, 8192, device, ref_rows)
        sync(device)
        if s:
            times["ref pass"].append(time.perf_counter() - t)
    seqs, _ = pair_sequences(pairs)
    tok = sum(len(x) for x in seqs) / len(pairs)
    padded_tok = np.mean([2 * max(len(x) for x in seqs[2 * i:2 * i + 2 * args.batch_pairs])
                          for i in range(0, len(pairs), args.batch_pairs)])
    print(f"device={device} shape={args.shape} params={base.num_params() / 1e6:.1f}M "
          f"batch={args.batch_pairs} pairs, {tok:.0f} tokens/pair (padded ~{padded_tok:.0f}), "
          f"{args.steps} timed steps, rows of {args.row_tokens}, threads={args.threads}")
    ref_rate = args.batch_pairs / statistics.median(times["ref pass"])
    print(f"one-time reference pass (ours, no grad): {ref_rate:.1f} pairs/s; "
          f"max |packed - padded| log-prob = {max_diff:.2e}")
    base_rate = args.batch_pairs / statistics.median(times["trl"])
    print(f"{'variant':<16}{'median step s':>14}{'pairs/s':>10}{'vs trl':>8}")
    for v in variants:
        med = statistics.median(times[v])
        rate = args.batch_pairs / med
        print(f"{v:<16}{med:>14.4f}{rate:>10.1f}{rate / base_rate:>7.2f}x")
    best = min(("cached+packed", "cached+rows0"), key=lambda v: statistics.median(times[v]))
    per_pair = statistics.median(times[best]) / args.batch_pairs + 1 / ref_rate
    print(f"{best + ' + ref pass, 1 epoch':<30}{1 / per_pair:>10.1f}"
          f"{1 / per_pair / base_rate:>7.2f}x")


if __name__ == "__main__":
    main()
