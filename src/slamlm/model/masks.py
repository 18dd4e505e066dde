"""Positions and attention masks for packed documents, padded batches and KV-cached decoding.

One function, :func:`build_mask_and_positions`, turns the forward's optional inputs into
``(mask, positions)`` once per batch, outside the layers; :func:`attend` dispatches on the
mask's type (``None`` = plain causal, a bool tensor = SDPA mask, a ``BlockMask`` = flex).

Example:
    >>> import torch
    >>> doc_positions(torch.tensor([[0, 0, 0, 1, 1, 2]])).tolist()
    [[0, 1, 2, 0, 1, 0]]
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn.attention.flex_attention import BlockMask, create_block_mask, flex_attention

AttnMask = Tensor | BlockMask | None

_compiled_flex = None


def _flex(on_cuda: bool):
    """flex_attention compiled once on GPU; on CPU the eager reference (compiling it there
    takes minutes and is only useful for checking the mask). Inside a compiled model the plain
    op is returned (the outer graph compiles it): creating/reading the cached wrapper there
    put a guard on this global, so the second training step recompiled the whole model."""
    global _compiled_flex
    if not on_cuda or torch.compiler.is_compiling():
        return flex_attention
    if _compiled_flex is None:
        _compiled_flex = torch.compile(flex_attention, dynamic=False)
    return _compiled_flex


def segment_ids(doc_ids: Tensor) -> tuple[Tensor, Tensor]:
    """doc_ids (B, T) -> (segment index (B, T), start flags (B, T)).

    A new segment starts wherever the doc id changes, so ids reused later in the row still
    make separate documents.
    """
    first = torch.ones_like(doc_ids[:, :1], dtype=torch.bool)
    start = torch.cat([first, doc_ids[:, 1:] != doc_ids[:, :-1]], dim=1)
    return start.long().cumsum(dim=1), start


def doc_positions(doc_ids: Tensor) -> Tensor:
    """Positions restarting at 0 at each document start (cummax trick, no Python loop)."""
    _, start = segment_ids(doc_ids)
    idx = torch.arange(doc_ids.shape[1], device=doc_ids.device).expand_as(doc_ids)
    last_start = torch.where(start, idx, torch.zeros_like(idx)).cummax(dim=1).values
    return idx - last_start


def doc_mask(seg: Tensor) -> Tensor:
    """Boolean SDPA mask (B, 1, T, T): causal and same document."""
    T = seg.shape[1]
    causal = torch.ones(T, T, dtype=torch.bool, device=seg.device).tril()
    return ((seg[:, :, None] == seg[:, None, :]) & causal)[:, None]


def doc_block_mask(seg: Tensor) -> BlockMask:
    """FlexAttention BlockMask for causal same-document attention.

    ``mask_mod`` closes over ``seg`` (a tensor of fixed shape), so new batches of the same
    shape do not recompile the attention kernel.
    """
    B, T = seg.shape

    def mask_mod(b, h, q_idx, kv_idx):
        return (seg[b, q_idx] == seg[b, kv_idx]) & (q_idx >= kv_idx)

    return create_block_mask(mask_mod, B, None, T, T, device=seg.device)


def padded_causal_mask(attention_mask: Tensor, q_len: int) -> Tensor:
    """(B, S) real-token flags -> (B, 1, q_len, S) mask for the last ``q_len`` queries.

    Keys must be real and not in the future; each query may always see itself so that rows of
    padding stay finite (their outputs are ignored).
    """
    S = attention_mask.shape[1]
    q_abs = torch.arange(S - q_len, S, device=attention_mask.device)[:, None]  # (Tq, 1)
    k_abs = torch.arange(S, device=attention_mask.device)[None, :]  # (1, S)
    causal = k_abs <= q_abs
    mask = (causal[None] & attention_mask[:, None, :].bool()) | (k_abs == q_abs)[None]
    return mask[:, None]  # (B, 1, Tq, S)


def build_mask_and_positions(
    input_ids: Tensor, doc_ids: Tensor | None, cache, attention_mask: Tensor | None,
    attn_impl: str = "sdpa",
) -> tuple[AttnMask, Tensor]:
    """The attention mask and RoPE positions (B, T) for one forward call."""
    B, T = input_ids.shape
    dev = input_ids.device
    if doc_ids is not None:
        if cache is not None or attention_mask is not None:
            raise ValueError("doc_ids cannot be combined with cache/attention_mask")
        if doc_ids.shape != input_ids.shape:
            raise ValueError(f"doc_ids shape {tuple(doc_ids.shape)} != input_ids {(B, T)}")
        seg, _ = segment_ids(doc_ids)
        mask = doc_block_mask(seg) if attn_impl == "flex" else doc_mask(seg)
        return mask, doc_positions(doc_ids)
    past = cache.length if cache is not None else 0
    if attention_mask is None:
        positions = torch.arange(past, past + T, device=dev).expand(B, T)
        if past == 0:
            return None, positions
        attention_mask = torch.ones(B, past + T, dtype=torch.bool, device=dev)
    if attention_mask.shape != (B, past + T):
        raise ValueError(
            f"attention_mask shape {tuple(attention_mask.shape)} != (batch, cached + new) = "
            f"{(B, past + T)}"
        )
    positions = (attention_mask.long().cumsum(dim=1) - 1).clamp(min=0)[:, past:]
    return padded_causal_mask(attention_mask, T), positions


def attend(q: Tensor, k: Tensor, v: Tensor, mask: AttnMask, gqa: bool) -> Tensor:
    """Scaled dot-product attention with the mask built by build_mask_and_positions."""
    if isinstance(mask, BlockMask):
        return _flex(q.is_cuda)(q, k, v, block_mask=mask, enable_gqa=gqa)
    if mask is None:
        return F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=gqa)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=gqa)
