"""Padding-free batches for DPO: several sequences per row, kept apart by ``doc_ids``.

A pair gives two documents (``prompt + chosen`` and ``prompt + rejected``); documents are laid
end to end in rows of at most ``row_tokens`` tokens (first-fit, longest first) and the model's
document-masked attention keeps them apart (positions restart at each document). Only the
completion positions are gathered from the logits, so the log-softmax runs on those alone.

Example:
    >>> import numpy as np
    >>> b = pack_rows([np.array([1, 5, 6, 2]), np.array([1, 5, 7, 8, 2])], [2, 2], row_tokens=16)
    >>> b.input_ids.tolist(), b.doc_ids.tolist()
    ([[1, 5, 7, 8, 2, 1, 5, 6, 2]], [[0, 0, 0, 0, 0, 1, 1, 1, 1]])
    >>> b.seq_index.tolist(), b.target.tolist()  # completion tokens (and eos) of each sequence
    ([1, 1, 1, 0, 0], [7, 8, 2, 6, 2])
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from slamlm.vocab import PAD_ID


@dataclass
class PackedBatch:
    """Rows of packed sequences and where each counted target token sits.

    ``input_ids``/``doc_ids``: (B, T); ``row``/``col``: (K,) position of the logits that
    predict target ``target`` (K,) of sequence ``seq_index`` (K,) (so ``col`` = its index - 1).
    """

    input_ids: torch.Tensor
    doc_ids: torch.Tensor
    row: torch.Tensor
    col: torch.Tensor
    target: torch.Tensor
    seq_index: torch.Tensor
    n_seqs: int

    def to(self, device: torch.device | str) -> PackedBatch:
        return PackedBatch(*(t.to(device) for t in (self.input_ids, self.doc_ids, self.row,
                                                     self.col, self.target, self.seq_index)),
                           n_seqs=self.n_seqs)

    @property
    def n_tokens(self) -> int:
        return int(self.input_ids.numel())


def _assign_rows(lengths: Sequence[int], row_tokens: int) -> list[list[int]]:
    """First-fit decreasing: lists of sequence indices whose lengths sum to <= row_tokens
    (a sequence longer than ``row_tokens`` gets a row of its own)."""
    rows: list[list[int]] = []
    room: list[int] = []
    for i in sorted(range(len(lengths)), key=lambda k: -lengths[k]):
        for r, free in enumerate(room):
            if lengths[i] <= free:
                rows[r].append(i)
                room[r] -= lengths[i]
                break
        else:
            rows.append([i])
            room.append(row_tokens - lengths[i])
    return rows


def pack_rows(seqs: Sequence[np.ndarray], starts: Sequence[int], row_tokens: int,
              pad_id: int = PAD_ID) -> PackedBatch:
    """Pack ``seqs`` into padded rows; tokens ``seq[starts[i]:]`` of each are the targets.

    ``row_tokens=0`` puts one sequence per row (a plain right-padded batch): the forward then
    needs no document mask and uses the fast causal attention path (faster on CPU).
    """
    lengths = [len(s) for s in seqs]
    for i, (n, s) in enumerate(zip(lengths, starts)):
        if not 1 <= s < n:
            raise ValueError(f"sequence {i}: completion start {s} outside 1..{n - 1}")
    rows = _assign_rows(lengths, row_tokens) if row_tokens > 0 else [[i] for i in
                                                                     range(len(seqs))]
    width = max(sum(lengths[i] for i in r) for r in rows)
    ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    docs = np.zeros((len(rows), width), dtype=np.int64)
    rr, cc, tt, ss = [], [], [], []
    for b, members in enumerate(rows):
        at = 0
        for d, i in enumerate(members):
            n, s = lengths[i], starts[i]
            ids[b, at:at + n] = seqs[i]
            docs[b, at:at + n] = d
            cols = np.arange(at + s - 1, at + n - 1)  # logits at t-1 predict token t
            rr.append(np.full(len(cols), b))
            cc.append(cols)
            tt.append(np.asarray(seqs[i][s:]))
            ss.append(np.full(len(cols), i))
            at += n
        docs[b, at:] = len(members)  # padding is a document of its own
    cat = lambda xs: torch.from_numpy(np.concatenate(xs).astype(np.int64))  # noqa: E731
    return PackedBatch(torch.from_numpy(ids), torch.from_numpy(docs), cat(rr), cat(cc),
                       cat(tt), cat(ss), n_seqs=len(seqs))


def chunk_by_tokens(lengths: Sequence[int], max_tokens: int) -> Iterator[list[int]]:
    """Consecutive index groups whose lengths sum to at most ``max_tokens`` (>= 1 each)."""
    group: list[int] = []
    total = 0
    for i, n in enumerate(lengths):
        if group and total + n > max_tokens:
            yield group
            group, total = [], 0
        group.append(i)
        total += n
    if group:
        yield group


def sequence_logps(model: torch.nn.Module, batch: PackedBatch) -> torch.Tensor:
    """Summed log-probs of each sequence's target tokens: (n_seqs,) float32 (grad flows)."""
    # one sequence per row (+ right padding, never attended by real tokens): plain causal;
    # known from the shape alone (every row holds >= 1 sequence), so no host sync
    single = batch.n_seqs == batch.input_ids.shape[0]
    logits = model(batch.input_ids, doc_ids=None if single else batch.doc_ids)  # (B, T, V)
    picked = logits[batch.row, batch.col].float()  # (K, V)
    logp = torch.log_softmax(picked, dim=-1).gather(1, batch.target[:, None]).squeeze(1)
    out = torch.zeros(batch.n_seqs, dtype=torch.float32, device=logp.device)
    return out.index_add(0, batch.seq_index, logp)
