"""Sampling from a SpeechLM: logits filters (pure) and KV-cached, batched generation.

The filters are pure functions on a ``(B, V)`` logits tensor. :func:`generate` left-pads a batch
of prompts, runs one forward over the prompts into a :class:`~slamlm.model.KVCache`, then one
token per step, and stops each sequence at ``<eos>``. Only unit tokens (and ``<eos>``) can be
sampled, so ``<pad>``/``<bos>``/text tokens never appear mid-stream.

Example:
    >>> import torch
    >>> top_k_filter(torch.tensor([[1.0, 3.0, 2.0]]), 2).tolist()
    [[-inf, 3.0, 2.0]]
    >>> # new = generate(model, [prompt_tokens], max_new_tokens=150, temperature=0.8, top_k=25,
    >>> #                vocab=UnitVocab(500), seed=0)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from slamlm.vocab import EOS_ID, N_SPECIALS, PAD_ID, UnitVocab

log = logging.getLogger(__name__)

NEG_INF = float("-inf")


def restrict_to_units(logits: torch.Tensor, vocab: UnitVocab, allow_eos: bool = True) -> torch.Tensor:
    """Set every logit that is not a unit token (or ``<eos>`` when allowed) to -inf.

    Example: with ``UnitVocab(2)`` (tokens pad, bos, eos, U0, U1) only ids 2, 3, 4 stay finite.
    """
    return logits.masked_fill(~unit_mask(vocab, logits.shape[-1], logits.device, allow_eos), NEG_INF)


def unit_mask(vocab: UnitVocab, width: int, device: Any = "cpu", allow_eos: bool = True) -> torch.Tensor:
    """(width,) bool: True on unit tokens (and ``<eos>`` when allowed)."""
    allowed = torch.zeros(width, dtype=torch.bool, device=device)
    allowed[vocab.unit_offset: vocab.unit_offset + vocab.n_units] = True
    if allow_eos:
        allowed[vocab.eos_id] = True
    return allowed


def repetition_penalty_(logits: torch.Tensor, seen: torch.Tensor, penalty: float) -> torch.Tensor:
    """CTRL-style penalty on tokens already in the prompt/generation (``seen``: (B, V) bool).

    Positive logits are divided by ``penalty``, negative ones multiplied, so ``penalty > 1``
    always lowers a seen token's probability. ``penalty == 1`` is a no-op.
    """
    if penalty == 1.0:
        return logits
    if penalty <= 0:
        raise ValueError(f"repetition_penalty must be > 0, got {penalty}")
    penalised = torch.where(logits > 0, logits / penalty, logits * penalty)
    return torch.where(seen, penalised, logits)


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the ``k`` largest logits per row (ties at the k-th value are kept); 0 = no-op."""
    if k <= 0 or k >= logits.shape[-1]:
        return logits
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, NEG_INF)


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Nucleus filter: keep the smallest set of tokens whose probability mass reaches ``p``.

    The most likely token is always kept; ``p >= 1`` is a no-op.
    """
    if p >= 1.0:
        return logits
    if p <= 0:
        raise ValueError(f"top_p must be in (0, 1], got {p}")
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    probs = torch.softmax(sorted_logits, dim=-1)
    mass_before = torch.cumsum(probs, dim=-1) - probs  # mass of strictly better tokens
    drop_sorted = mass_before >= p
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, NEG_INF)


def sample_next(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Pick one token per row of ``logits`` (B, V) -> (B,) long.

    ``temperature == 0`` or ``top_k == 1`` is greedy (argmax, deterministic).
    """
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if temperature == 0 or top_k == 1:
        return logits.argmax(dim=-1)
    logits = top_k_filter(logits.float() / temperature, top_k)
    logits = top_p_filter(logits, top_p)
    probs = torch.softmax(logits, dim=-1)
    if generator is not None and generator.device.type != probs.device.type:
        probs_cpu = probs.cpu()
        return torch.multinomial(probs_cpu, 1, generator=generator).squeeze(-1).to(probs.device)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


def left_pad(prompts: Sequence[np.ndarray], pad_id: int = PAD_ID) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-pad token arrays -> ``(ids (B, L) long, mask (B, L) bool)``, mask True on real tokens."""
    if not prompts or any(len(p) == 0 for p in prompts):
        raise ValueError("every prompt needs at least one token (start prompts with <bos>)")
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.bool)
    for i, p in enumerate(prompts):
        ids[i, width - len(p):] = torch.as_tensor(np.asarray(p, dtype=np.int64))
        mask[i, width - len(p):] = True
    return ids, mask


def _default_cache_factory(model: Any, batch_size: int, max_len: int, device: Any, dtype: Any) -> Any:
    from slamlm.model import KVCache

    return KVCache.empty(model, batch_size, max_len, device, dtype)


def _model_device_dtype(model: torch.nn.Module) -> tuple[torch.device, torch.dtype]:
    p = next(model.parameters())
    return p.device, p.dtype


@torch.no_grad()
def _generate_batch(
    model: torch.nn.Module,
    prompts: Sequence[np.ndarray],
    max_new_tokens: int,
    sampling: dict[str, Any],
    vocab: UnitVocab,
    repetition_penalty: float,
    generator: torch.Generator | None,
    stop_at_eos: bool,
    cache_factory: Callable[..., Any],
) -> list[np.ndarray]:
    device, dtype = _model_device_dtype(model)
    ids, mask = left_pad(prompts, vocab.pad_id)
    ids, mask = ids.to(device), mask.to(device)
    bsz, width = ids.shape
    cache = cache_factory(model, bsz, width + max_new_tokens, device, dtype)
    seen = torch.zeros((bsz, model_vocab_size(model, vocab)), dtype=torch.bool, device=device)
    seen.scatter_(1, ids.masked_fill(~mask, vocab.pad_id), True)
    seen[:, vocab.pad_id] = False
    out = torch.full((bsz, max_new_tokens), vocab.eos_id, dtype=torch.long, device=device)
    done = torch.zeros(bsz, dtype=torch.bool, device=device)
    logits = model(ids, cache=cache, attention_mask=mask)[:, -1]  # (B, V)
    blocked = ~unit_mask(vocab, logits.shape[-1], device, allow_eos=stop_at_eos)
    rows = torch.arange(bsz, device=device)
    n = 0
    for n in range(max_new_tokens):
        logits = logits.float().masked_fill(blocked, NEG_INF)
        logits = repetition_penalty_(logits, seen[:, : logits.shape[-1]], repetition_penalty)
        nxt = sample_next(logits, generator=generator, **sampling)
        nxt = torch.where(done, torch.full_like(nxt, vocab.eos_id), nxt)
        out[:, n] = nxt
        if repetition_penalty != 1.0:
            seen[rows, nxt] = True
        done |= nxt == vocab.eos_id
        if bool(done.all()) or n == max_new_tokens - 1:
            break
        mask = torch.cat([mask, torch.ones((bsz, 1), dtype=torch.bool, device=device)], dim=1)
        logits = model(nxt[:, None], cache=cache, attention_mask=mask)[:, -1]
    result = []
    for row in out[:, : n + 1].cpu().numpy():
        stop = np.flatnonzero(row == vocab.eos_id)
        result.append(row[: stop[0]] if stop.size else row)
    return result


def model_vocab_size(model: Any, vocab: UnitVocab) -> int:
    """The model's logits width (its config ``vocab_size`` when known, else ``vocab.size``)."""
    cfg = getattr(model, "config", None)
    size = getattr(cfg, "vocab_size", None)
    return int(size) if size else vocab.size


def generate(
    model: torch.nn.Module,
    prompts: Sequence[np.ndarray],
    max_new_tokens: int = 150,
    temperature: float = 0.8,
    top_k: int = 25,
    top_p: float = 1.0,
    repetition_penalty: float = 1.0,
    seed: int | None = 0,
    stop_at_eos: bool = True,
    vocab: UnitVocab | None = None,
    batch_size: int = 32,
    cache_factory: Callable[..., Any] | None = None,
) -> list[np.ndarray]:
    """Continue each prompt (token ids, ``[bos] + units``); return only the new tokens.

    Sequences are grouped into batches of prompts of similar length, left-padded and decoded
    with a KV cache; each stops at ``<eos>`` (not included in the output) or after
    ``max_new_tokens``. The returned list is in the order of ``prompts``. ``seed`` seeds one
    ``torch.Generator`` for the whole call (same seed, same prompts, same batch size -> same
    samples). ``cache_factory(model, B, max_len, device, dtype)`` defaults to
    ``slamlm.model.KVCache.empty``.

    Example:
        >>> # new = generate(model, [np.array([1, 40, 41])], max_new_tokens=10, temperature=0)
    """
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    vocab = vocab or UnitVocab(n_units=model_vocab_size(model, UnitVocab()) - N_SPECIALS)
    if vocab.eos_id != EOS_ID:
        log.debug("vocabulary uses eos id %d", vocab.eos_id)
    device, _ = _model_device_dtype(model)
    generator = None
    if seed is not None:
        gen_device = device if device.type == "cuda" else torch.device("cpu")
        generator = torch.Generator(device=gen_device).manual_seed(int(seed))
    sampling = {"temperature": temperature, "top_k": top_k, "top_p": top_p}
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    results: list[np.ndarray | None] = [None] * len(prompts)
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(order), batch_size):
            idx = order[start: start + batch_size]
            outs = _generate_batch(
                model, [prompts[i] for i in idx], max_new_tokens, sampling, vocab,
                repetition_penalty, generator, stop_at_eos, cache_factory or _default_cache_factory,
            )
            for i, o in zip(idx, outs):
                results[i] = o
    finally:
        model.train(was_training)
    return [r if r is not None else np.zeros(0, np.int64) for r in results]
