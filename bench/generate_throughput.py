"""Generation throughput: ours (``slamlm.generate.generate``) vs ``transformers.generate``.

Same weights (our random SpeechLM exported with ``export_hf`` and loaded by
``AutoModelForCausalLM``), same left-padded prompts, same batch, same number of new tokens (eos
is never allowed to stop either side, so both do identical work). Greedy decoding restricted to
unit tokens on both sides (HF via ``suppress_tokens``) also checks that the two produce the same
tokens; a sampled row (temperature 0.8, top-k 25) times the GenPPL setting. Prints a table.

    python bench/generate_throughput.py                       # CPU, "small" shape
    python bench/generate_throughput.py --device cuda --shape slam-358m --batch 64 --new-tokens 150
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import torch

from slamlm.generate.sampling import generate
from slamlm.model import SpeechLM, named_shape
from slamlm.model.hf import export_hf
from slamlm.vocab import UnitVocab


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def make_prompts(n: int, vocab: UnitVocab, lo: int, hi: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [np.concatenate([[vocab.bos_id], vocab.encode_units(rng.integers(0, vocab.n_units, k))])
            for k in rng.integers(lo, hi, n)]


def run_ours(model, prompts, vocab, new_tokens, sampled: bool) -> list[np.ndarray]:
    kw = dict(temperature=0.8, top_k=25) if sampled else dict(temperature=0.0)
    return generate(model, prompts, max_new_tokens=new_tokens, vocab=vocab, stop_at_eos=False,
                    batch_size=len(prompts), seed=0, **kw)


def run_hf(hf, prompts, vocab, new_tokens, sampled: bool, device: str) -> list[np.ndarray]:
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), vocab.pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, p in enumerate(prompts):
        ids[i, width - len(p):] = torch.as_tensor(p)
        mask[i, width - len(p):] = 1
    blocked = [vocab.pad_id, vocab.bos_id, vocab.eos_id] + list(
        range(vocab.unit_offset + vocab.n_units, hf.config.vocab_size))
    kw = dict(do_sample=True, temperature=0.8, top_k=25) if sampled else dict(do_sample=False)
    with torch.inference_mode():
        out = hf.generate(input_ids=ids.to(device), attention_mask=mask.to(device),
                          max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                          suppress_tokens=blocked, pad_token_id=vocab.pad_id, eos_token_id=None,
                          top_p=None, **kw)
    return [row for row in out[:, width:].cpu().numpy()]


def timed_pair(fn_a, fn_b, device: str, repeats: int,
               warmup: bool = True) -> tuple[float, float, object, object]:
    """Best-of-``repeats`` seconds of two functions, run alternately (the CPU is shared, so
    interleaving keeps load changes from favouring one side), after one warm-up each."""
    if warmup:
        fn_a(), fn_b()
    best = [float("inf"), float("inf")]
    results: list[object] = [None, None]
    for _ in range(repeats):
        for i, fn in enumerate((fn_a, fn_b)):
            sync(device)
            t = time.perf_counter()
            results[i] = fn()
            sync(device)
            best[i] = min(best[i], time.perf_counter() - t)
    return best[0], best[1], results[0], results[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--shape", default="small")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--dtype", default=None, help="bf16 | fp32 (default bf16 on CUDA)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--prompt-len", type=int, nargs=2, default=(40, 80))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dtype = {"bf16": torch.bfloat16, "fp32": torch.float32}[
        args.dtype or ("bf16" if args.device == "cuda" else "fp32")]
    vocab = UnitVocab(n_units=500)
    torch.manual_seed(0)
    model = SpeechLM(named_shape(args.shape, vocab_size=vocab.size)).to(args.device, dtype).eval()
    from transformers import AutoModelForCausalLM

    with tempfile.TemporaryDirectory() as tmp:
        export_hf(model, tmp, vocab)
        hf = AutoModelForCausalLM.from_pretrained(tmp, dtype=dtype).to(args.device).eval()
    prompts = make_prompts(args.batch, vocab, *args.prompt_len)
    n_tok = args.batch * args.new_tokens
    rows = []
    for sampled in (False, True):
        t_ours, t_hf, ours, theirs = timed_pair(
            lambda s=sampled: run_ours(model, prompts, vocab, args.new_tokens, s),
            lambda s=sampled: run_hf(hf, prompts, vocab, args.new_tokens, s, args.device),
            args.device, args.repeats)
        agree = "" if sampled else f"{np.mean([np.mean(a == b) for a, b in zip(ours, theirs)]):.3f}"
        mode = "sampled t0.8 k25" if sampled else "greedy"
        rows.append((mode, "ours (static KV cache)", n_tok / t_ours, t_ours, agree))
        rows.append((mode, "transformers.generate", n_tok / t_hf, t_hf, agree))
    print(f"\ngeneration, shape={args.shape} device={args.device} dtype={dtype} "
          f"batch={args.batch} prompt_len={tuple(args.prompt_len)} new_tokens={args.new_tokens} "
          f"threads={args.threads}")
    print(f"{'mode':<18}{'implementation':<26}{'new tok/s':>12}{'seconds':>10}{'same tokens':>13}")
    for mode, impl, tps, sec, agree in rows:
        print(f"{mode:<18}{impl:<26}{tps:>12.1f}{sec:>10.3f}{agree:>13}")
    for i in range(0, len(rows), 2):
        print(f"speed-up ({rows[i][0]}): {rows[i][2] / rows[i + 1][2]:.2f}x")


if __name__ == "__main__":
    main()
