"""Parts 5 and 6: eval scoring (pairs/s) and generation (new tokens/s), 358M random weights.

Both reuse the standalone benches (``bench/eval_throughput.py``,
``bench/generate_throughput.py``): their sequence/prompt makers, baselines and timers.
"""

from __future__ import annotations

import tempfile
from functools import partial

import numpy as np
import torch
from eval_throughput import make_sequences, naive_logprobs, timed
from generate_throughput import make_prompts, run_hf, run_ours, timed_pair

from slamlm.eval.likelihood import token_logprobs
from slamlm.model import SpeechLM, export_hf, named_shape
from slamlm.vocab import UnitVocab
from suite.common import Part

SBLIMP_PAIRS = 31_500  # 63 000 files


def _model(p: Part, shape: str, vocab: UnitVocab) -> SpeechLM:
    """Random-weight SpeechLM: bf16 + flex on GPU, fp32 + SDPA on CPU."""
    torch.manual_seed(0)
    cfg = named_shape(shape, vocab_size=vocab.size, attn_impl="flex" if p.gpu else "sdpa")
    return SpeechLM(cfg).to(p.device, torch.bfloat16 if p.gpu else torch.float32).eval()


def part_eval(p: Part) -> None:
    """Packed, document-masked ``token_logprobs`` vs one sequence per forward."""
    shape, n_pairs, n_naive = ("tiny", 100, 20) if p.dry else ("slam-358m", 4000, 200)
    dev, vocab = p.device.type, UnitVocab(500)
    model = _model(p, shape, vocab)
    seqs = make_sequences(n_pairs, vocab.size)  # 20-90 tokens: sBLIMP after dedup at 25 Hz
    p.notes.append(f"{shape}, {n_pairs} pairs ({sum(map(len, seqs))} tokens), naive on "
                   f"{n_naive}; projections for {2 * SBLIMP_PAIRS} files exclude unit extraction")
    score = partial(token_logprobs, model, seqs, max_tokens=16384)
    score()  # warm-up: the same batches, so every shape is compiled before the timed pass
    ours, t = timed(score, dev)
    naive_logprobs(model, seqs[:4], dev)  # warm-up
    naive, t_naive = timed(partial(naive_logprobs, model, seqs[:2 * n_naive], dev), dev)
    diff = max(float(np.abs(a - b).max()) for a, b in zip(ours, naive))
    pps, pps_naive = n_pairs / t, n_naive / t_naive
    p.add("slamlm.eval.likelihood: packed rows, doc-masked, 16k tokens/forward",
          {"pairs_s": pps, "proj_63k_files_s": SBLIMP_PAIRS / pps, "vs_naive": pps / pps_naive},
          max_abs_dlogp_vs_naive=diff)
    p.add("naive: one sequence per forward", {"pairs_s": pps_naive,
                                               "proj_63k_files_s": SBLIMP_PAIRS / pps_naive})


def part_generate(p: Part) -> None:
    """``slamlm.generate.generate`` vs ``transformers.generate``, same exported weights."""
    from transformers import AutoModelForCausalLM

    shape, batch, new = ("tiny", 4, 16) if p.dry else ("slam-358m", 64, 150)
    vocab, dev = UnitVocab(500), p.device
    model = _model(p, shape, vocab)
    dtype = next(model.parameters()).dtype
    with tempfile.TemporaryDirectory(dir=p.work) as tmp:
        export_hf(model, tmp, vocab)
        hf = AutoModelForCausalLM.from_pretrained(tmp, dtype=dtype).to(dev).eval()
    prompts = make_prompts(batch, vocab, 40, 80)
    p.notes.append(f"{shape} {str(dtype).removeprefix('torch.')}, batch {batch}, prompts of "
                   f"40-80 tokens, {new} new tokens (eos never stops either side)")
    n_tok = batch * new
    for sampled in (False, True):
        mode = "sampled t0.8 k25" if sampled else "greedy"
        t_ours, t_hf, ours, theirs = timed_pair(
            partial(run_ours, model, prompts, vocab, new, sampled),
            partial(run_hf, hf, prompts, vocab, new, sampled, dev), dev.type, repeats=1,
            warmup=not sampled)  # the greedy pass warmed both up
        same = None if sampled else float(np.mean([np.mean(a == b) for a, b in zip(ours, theirs)]))
        p.add(f"{mode}: ours (static KV cache)", {"tok_s": n_tok / t_ours, "vs_hf": t_hf / t_ours},
              same_tokens_as_hf=same)
        p.add(f"{mode}: transformers.generate", {"tok_s": n_tok / t_hf})
