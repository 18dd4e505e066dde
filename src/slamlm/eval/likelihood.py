"""Token log-probabilities of many sequences, packed so short sequences share one forward.

Sequences are sorted by length and packed best-fit into rows of ``row_len`` tokens; each row
carries ``doc_ids`` so attention stays inside a sequence and positions restart at 0 (the
SpeechLM contract). Rows are stacked up to ``max_tokens`` tokens per forward. Because nothing
crosses a document boundary, results do not depend on the packing (up to float rounding).

Example:
    >>> seqs = [np.array([1, 5, 9, 2]), np.array([1, 7, 2])]
    >>> lps = token_logprobs(model, seqs, max_tokens=4096)     # doctest: +SKIP
    >>> [lp.shape for lp in lps]                               # doctest: +SKIP
    [(3,), (2,)]
"""

from __future__ import annotations

import bisect
import heapq
import logging
from collections.abc import Sequence

import numpy as np

log = logging.getLogger(__name__)

# packed row length (tokens); longer sequences get a row of their own. Short rows on CPU: the
# SDPA fallback masks a dense (T, T) block per row (bench/eval_throughput.py: 128 is the best
# of 128..2048 there); on GPU FlexAttention skips masked blocks, so rows can be long.
DEFAULT_ROW_LEN = {"cpu": 128, "cuda": 1024}
WIDTH_MULTIPLE = 128


def pack_rows(lengths: Sequence[int], row_len: int) -> list[list[int]]:
    """Best-fit-decreasing packing of sequence indices into rows of at most ``row_len`` tokens.

    A sequence longer than ``row_len`` gets a row of its own. Rows come out longest-first.

    Example:
        >>> pack_rows([5, 3, 2, 4], row_len=8)
        [[0, 1], [3, 2]]
    """
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    rows: list[list[int]] = []
    # rows with room, bucketed by remaining capacity: the best fit is the smallest capacity
    # >= n, lowest row first. At most row_len distinct capacities, so each step is
    # O(log row_len) (one sorted list of all open rows made it O(rows) a step: quadratic).
    caps: list[int] = []  # sorted distinct capacities that have open rows
    open_rows: dict[int, list[int]] = {}  # capacity -> heap of row indices
    for i in order:
        n = int(lengths[i])
        j = bisect.bisect_left(caps, n)
        if j < len(caps):
            cap = caps[j]
            heap = open_rows[cap]
            r = heapq.heappop(heap)
            if not heap:
                del open_rows[cap]
                caps.pop(j)
            rows[r].append(i)
            rem = cap - n
        else:
            rows.append([i])
            r, rem = len(rows) - 1, row_len - n
        if rem > 0:
            if rem not in open_rows:
                bisect.insort(caps, rem)
                open_rows[rem] = []
            heapq.heappush(open_rows[rem], r)
    return rows


def _batch_rows(rows: list[list[int]], lengths: Sequence[int], max_tokens: int) -> list[list[list[int]]]:
    """Group rows (longest first) into forwards of at most ``max_tokens`` padded tokens."""
    batches: list[list[list[int]]] = []
    cur: list[list[int]] = []
    width = 0
    for row in rows:
        n = sum(lengths[i] for i in row)
        new_width = max(width, n)
        if cur and new_width * (len(cur) + 1) > max_tokens:
            batches.append(cur)
            cur, new_width = [], n
        cur.append(row)
        width = new_width
    if cur:
        batches.append(cur)
    return batches


def _model_device(model) -> torch.device:  # noqa: F821
    import torch

    p = next(iter(model.parameters()), None)
    return p.device if p is not None else torch.device("cpu")


def _forward_batch(model, batch: list[list[int]], seqs: list[np.ndarray], pad_id: int,
                   cpu_bf16: bool = False) -> list[tuple[int, np.ndarray]]:
    """One packed forward; returns (sequence index, log-probs of tokens 1..n-1) pairs."""
    import torch

    device = _model_device(model)
    width = max(sum(len(seqs[i]) for i in row) for row in batch)
    if device.type == "cuda":  # few distinct shapes: compiled attention kernels get reused
        width = -(-width // WIDTH_MULTIPLE) * WIDTH_MULTIPLE
    ids = np.full((len(batch), width), pad_id, dtype=np.int64)
    docs = np.zeros((len(batch), width), dtype=np.int64)
    spans = []
    for r, row in enumerate(batch):
        start = 0
        for d, i in enumerate(row):
            n = len(seqs[i])
            ids[r, start:start + n] = seqs[i]
            docs[r, start:start + n] = d
            spans.append((i, r, start, n))
            start += n
        docs[r, start:] = len(row)  # padding is a document of its own
    input_ids = torch.from_numpy(ids).to(device)
    doc_ids = torch.from_numpy(docs).to(device)
    use_bf16 = device.type == "cuda" or (cpu_bf16 and device.type == "cpu")
    with torch.inference_mode(), torch.autocast(device.type, torch.bfloat16, enabled=use_bf16):
        logits = model(input_ids, doc_ids=doc_ids)  # (B, T, V)
    logits = logits[:, :-1].float()
    target = input_ids[:, 1:].unsqueeze(-1)
    lp = (logits.gather(-1, target).squeeze(-1) - torch.logsumexp(logits, dim=-1)).cpu().numpy()
    return [(i, lp[r, s:s + n - 1]) for i, r, s, n in spans]  # views: copied by the caller


def token_logprobs(
    model, sequences: list[np.ndarray], max_tokens: int = 16384, row_len: int | None = None,
    pad_id: int = 0, progress: bool = False, cpu_bf16: bool = False,
) -> list[np.ndarray]:
    """log p(token_t | tokens_<t) for t >= 1 of each sequence, in input order (no grad).

    ``max_tokens`` bounds the padded tokens of one forward; ``row_len`` (default 128 on CPU,
    1024 on GPU, capped by ``max_tokens``, at least the longest sequence) is the row length. On a
    CUDA model the forward runs under bf16 autocast, on a CPU model too with ``cpu_bf16`` (when
    bf16 matmuls are fast there: ``device.bf16_is_fast``); log-softmax is always fp32.
    """
    seqs = [np.asarray(s, dtype=np.int64).reshape(-1) for s in sequences]
    lengths = [len(s) for s in seqs]
    # every result is a view into one flat buffer: one allocation, not one per sequence
    # (100k+ small arrays between large per-batch temporaries fragmented the heap: RSS grew
    # ~4 KB per scored pair beyond the results themselves)
    ends = np.cumsum([max(n - 1, 0) for n in lengths], dtype=np.int64)
    flat = np.zeros(int(ends[-1]) if len(ends) else 0, dtype=np.float64)
    starts = ends - np.array([max(n - 1, 0) for n in lengths], dtype=np.int64)
    out = [flat[a:b] for a, b in zip(starts.tolist(), ends.tolist())]
    todo = [i for i, n in enumerate(lengths) if n >= 2]
    if not todo:
        return out
    longest = max(lengths[i] for i in todo)
    default = DEFAULT_ROW_LEN.get(_model_device(model).type, 1024)
    row_len = max(longest, row_len or min(max_tokens, default))
    rows = [[todo[j] for j in row] for row in pack_rows([lengths[i] for i in todo], row_len)]
    batches = _batch_rows(rows, lengths, max_tokens)
    if cpu_bf16 and _model_device(model).type == "cpu":
        from slamlm.device import bf16_is_fast

        cpu_bf16 = bf16_is_fast(_model_device(model))
    was_training = getattr(model, "training", False)
    model.eval()
    try:
        it = batches
        if progress:
            from tqdm import tqdm

            it = tqdm(batches, desc="scoring", unit="batch")
        for batch in it:
            for i, lp in _forward_batch(model, batch, seqs, pad_id, cpu_bf16):
                out[i][:] = lp
    finally:
        model.train(was_training)
    log.debug("scored %d sequences in %d forwards", len(todo), len(batches))
    return out
