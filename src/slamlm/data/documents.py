"""Packings that keep documents whole: first-fit decreasing rows, or one document per row.

A document longer than ``context`` is first cut into consecutive pieces of ``context``
tokens (the last one shorter), as ``slam pack`` does; every other document stays whole. The
pieces are then laid out in rows of ``context`` tokens:

- ``ffd``: first-fit decreasing bin packing (longest piece first, each into the first row
  with room), so rows are nearly full (about 1-3 % padding on a log-normal mix around 30 %
  of the context);
- ``doc_per_row``: each piece alone in its row, padded (the peer toolkit's default
  ``packing: false``; about 70 % padding at 300-token documents and context 1024).

A row is a :class:`slamlm.data.windows.MicroBatch` row under the windows' contract: the
target at ``t`` is token ``t + 1`` of the same piece (``IGNORE`` at each piece's last token
and on padding); doc ids count pieces from 0 in each row, the padding being a document of its
own, so positions restart per piece and attention never crosses pieces.

The layout is computed once (ties among equal lengths broken by ``seed``, row numbers
shuffled by ``seed`` so that the first rows are a fair sample for validation); each epoch
visits the rows in ``order(seed, epoch)``. Re-packing per epoch would only change which
pieces share a row, and under document masking a row's neighbours do not change its loss.

Example:
    >>> first_fit_decreasing(np.array([5, 3, 3, 2, 7]), 8).tolist()
    [1, 1, 2, 2, 0]
    >>> split_pieces(np.array([0, 10]), np.array([10, 3]), 4)
    (array([ 0,  4,  8, 10]), array([4, 4, 2, 3]))
    >>> # rows = PackedDocuments(TokenShard.open("run/tokens", "train"), context=1024)
    >>> # sampler = WindowSampler(rows, micro_batch=16, accum=8, seed=0)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from slamlm.data.shards import TokenShard
from slamlm.data.windows import IGNORE, MicroBatch, PackedWindows, Rows

Packing = Literal["ffd", "doc_per_row", "windows"]
PACKINGS: tuple[str, ...] = ("ffd", "doc_per_row", "windows")


def split_pieces(offsets: np.ndarray, lengths: np.ndarray, context: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(offsets, lengths) of the pieces: documents cut into runs of at most ``context``."""
    lengths = np.asarray(lengths, dtype=np.int64)
    keep = lengths > 0
    offsets, lengths = np.asarray(offsets, dtype=np.int64)[keep], lengths[keep]
    n = -(-lengths // context)  # pieces per document
    first = np.repeat(np.cumsum(n) - n, n)
    k = np.arange(int(n.sum()), dtype=np.int64) - first  # piece number inside its document
    doc_len = np.repeat(lengths, n)
    return np.repeat(offsets, n) + k * context, np.minimum(context, doc_len - k * context)


def first_fit_decreasing(lengths: np.ndarray, capacity: int) -> np.ndarray:
    """Row (bin) of each item under first-fit decreasing; exact, vectorised per length.

    Items go longest first (ties in the given order) into the lowest-numbered row with room.
    Items of one length are interchangeable, so a whole length class is placed at once: row
    ``j`` (in order) takes ``remaining_j // L`` of them until none is left, then new rows
    take ``capacity // L`` each -- exactly what placing them one by one does.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    if lengths.size and (lengths.min() < 1 or lengths.max() > capacity):
        raise ValueError(f"item lengths must be in [1, {capacity}]")
    if not lengths.size:
        return np.zeros(0, dtype=np.int64)
    order = np.argsort(-lengths, kind="stable")
    sorted_len = lengths[order]
    out = np.empty(lengths.size, dtype=np.int64)
    room = np.zeros(0, dtype=np.int64)  # remaining capacity of each row so far
    starts = np.flatnonzero(np.r_[True, sorted_len[1:] != sorted_len[:-1]])
    for s, e in zip(starts, np.r_[starts[1:], lengths.size]):
        size, count = int(sorted_len[s]), int(e - s)
        take = room // size
        cum = np.cumsum(take)
        if cum.size and cum[-1] >= count:
            last = int(np.searchsorted(cum, count))
            take = take[:last + 1]
            take[last] -= int(cum[last]) - count
            new = np.zeros(0, dtype=np.int64)
        else:
            per = capacity // size
            left = count - (int(cum[-1]) if cum.size else 0)
            new = np.full(-(-left // per), per, dtype=np.int64)
            new[-1] = left - per * (new.size - 1)
        room[:take.size] -= take * size
        chosen = np.r_[np.repeat(np.arange(take.size), take),
                       room.size + np.repeat(np.arange(new.size), new)]
        room = np.r_[room, capacity - new * size]
        out[order[s:e]] = chosen
    return out


class PackedDocuments:
    """Whole documents (pieces of at most ``context``) in rows: ``ffd`` or ``doc_per_row``."""

    def __init__(self, shard: TokenShard, context: int, packing: str = "ffd", seed: int = 0):
        if context < 2:
            raise ValueError(f"context must be >= 2, got {context}")
        if packing not in ("ffd", "doc_per_row"):
            raise ValueError(f"packing {packing!r}: expected 'ffd' or 'doc_per_row'")
        self.shard, self.context, self.packing = shard, context, packing
        off, lens = split_pieces(shard.doc_offsets, shard.doc_lengths, context)
        rng = np.random.default_rng([seed, 0x7061636B])  # 'pack'
        perm = rng.permutation(lens.size)  # tie-breaking among equal lengths
        off, lens = off[perm], lens[perm]
        if packing == "ffd":
            row = first_fit_decreasing(lens, context)
        else:
            row = np.arange(lens.size, dtype=np.int64)
        n_rows = int(row.max()) + 1 if row.size else 0
        row = rng.permutation(n_rows)[row]  # row numbers in random order
        items = np.argsort(row, kind="stable")  # pieces grouped by row, placement order kept
        self.piece_offsets, self.piece_lengths = off[items], lens[items]
        self.row_ptr = np.r_[0, np.cumsum(np.bincount(row, minlength=n_rows))].astype(np.int64)
        per_row = np.add.reduceat(self.piece_lengths, self.row_ptr[:-1]) if n_rows else lens
        self.row_tokens = np.asarray(per_row, dtype=np.int64)
        self.row_valid = self.row_tokens - np.diff(self.row_ptr)

    def __len__(self) -> int:
        return int(self.row_ptr.size - 1)

    def pieces(self, i: int) -> list[tuple[int, int]]:
        """(offset, length) in the shard of each piece of row ``i``, in row order."""
        lo, hi = self.row_ptr[i], self.row_ptr[i + 1]
        return list(zip(self.piece_offsets[lo:hi].tolist(), self.piece_lengths[lo:hi].tolist()))

    def batch(self, indices: np.ndarray | Sequence[int]) -> MicroBatch:
        """Rows ``indices`` as a ``(B, context)`` micro-batch (pure function of the indices)."""
        b, t = len(indices), self.context
        x = np.zeros((b, t), dtype=np.int64)
        y = np.full((b, t), IGNORE, dtype=np.int64)
        d = np.zeros((b, t), dtype=np.int64)
        for r, i in enumerate(indices):
            pos = 0
            for j, (o, n) in enumerate(self.pieces(int(i))):
                toks = np.asarray(self.shard.tokens[o:o + n], dtype=np.int64)
                x[r, pos:pos + n], y[r, pos:pos + n - 1] = toks, toks[1:]
                d[r, pos:pos + n] = j
                pos += n
            d[r, pos:] = d[r, pos - 1] + 1 if pos else 0  # padding: a document of its own
        return MicroBatch(x, y, d)

    def n_valid(self, indices: np.ndarray | Sequence[int]) -> int:
        """Number of non-ignored targets in these rows (from the layout; no token read)."""
        return int(self.row_valid[np.asarray(indices, dtype=np.int64)].sum())

    def order(self, seed: int, epoch: int) -> np.ndarray:
        """Deterministic permutation of row indices for ``(seed, epoch)``."""
        return np.random.default_rng([seed, epoch]).permutation(len(self))

    def padding_fraction(self) -> float:
        """Share of row slots that are padding."""
        return 1.0 - float(self.row_tokens.sum()) / max(1, len(self) * self.context)


def packed_rows(shard: TokenShard, context: int, packing: str = "ffd", seed: int = 0,
                pad_last: bool = False) -> Rows:
    """The rows of ``shard`` under ``packing`` (:data:`PACKINGS`); ``pad_last``: windows only.

    Example:
        >>> # val = packed_rows(TokenShard.open("run/tokens", "val"), 1024, "ffd")
    """
    if packing == "windows":
        return PackedWindows(shard, context, pad_last=pad_last)
    if packing not in PACKINGS:
        raise ValueError(f"data.packing {packing!r}: expected one of {', '.join(PACKINGS)}")
    return PackedDocuments(shard, context, packing, seed=seed)


def row_stats(rows: Rows, max_rows: int | None = None, micro: int = 256) -> dict[str, float]:
    """Padding share, mean context per target and real tokens per row of the first rows.

    Computed from ``rows.batch`` alone (any packing): padding = ``pad_id`` input tokens
    (never inside a document), the context of a target = tokens of its document visible at
    it (its position in the document piece + 1).
    """
    n = len(rows) if max_rows is None else min(len(rows), max_rows)
    pad_id = rows.shard.vocab.pad_id
    pad = ctx = targets = 0
    for i in range(0, n, micro):
        mb = rows.batch(np.arange(i, min(n, i + micro)))
        pad += int((mb.input_ids == pad_id).sum())
        d = mb.doc_ids
        t = np.arange(d.shape[1])
        start = np.r_[True, np.zeros(d.shape[1] - 1, dtype=bool)] | np.c_[
            np.zeros((d.shape[0], 1), dtype=bool), d[:, 1:] != d[:, :-1]]
        last_start = np.maximum.accumulate(np.where(start, t, 0), axis=1)
        valid = mb.targets != IGNORE
        ctx += int((t - last_start + 1)[valid].sum())
        targets += int(valid.sum())
    slots = max(1, n * rows.context)
    return {"padding": pad / slots, "mean_context": ctx / max(1, targets),
            "real_tokens_per_row": (slots - pad) / max(1, n),
            "targets_per_row": targets / max(1, n)}
