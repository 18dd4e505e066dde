"""Rows of ``context`` tokens for training: the sampler contract, and fixed windows (one packing).

A *packing* is any :class:`Rows`: ``len`` rows per epoch, a deterministic row ``order(seed,
epoch)``, ``batch(indices) -> MicroBatch`` and ``n_valid(indices)``. :class:`WindowSampler`
and :func:`eval_batches` work on any of them: :class:`PackedWindows` here (fixed windows that
cut documents), :class:`slamlm.data.documents.PackedDocuments` (whole documents, first-fit
decreasing or one per row).

Fixed windows:

Window ``i`` covers tokens ``[i*T, i*T + T + 1)`` of the flat stream (``T`` = context): the
model reads the first ``T`` and predicts the last ``T``. A target is kept only when it is the
next token *of the same document*; where a new document starts the target is ``IGNORE``.
Documents may cross window boundaries: the continuation becomes its own document in the next
window (positions restart there). Document ids are renumbered from 0 in each window, so a
batch has a fixed shape whatever the data.

Order: a permutation of the windows fixed by ``(seed, epoch)``. One optimizer step consumes a
*global batch* of ``micro_batch * accum * world`` windows, split into micro-batches; micro-batch
``j`` belongs to rank ``j % world``. The data position ``(epoch, step)`` is all a checkpoint
needs for an exact resume, and 1 process with accumulation ``a*w`` sees the same global batch
as ``w`` processes with accumulation ``a``.

Example:
    >>> # ds = PackedWindows(TokenShard.open("run/tokens", "train"), context=1024)
    >>> # sampler = WindowSampler(ds, micro_batch=16, accum=8, seed=0)
    >>> # micro_batches, n_valid = sampler.next()   # this rank's (x, y, doc_ids) arrays
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from slamlm.data.shards import TokenShard

IGNORE = -100


@dataclass
class MicroBatch:
    """Arrays of one micro-batch: inputs, targets (``IGNORE`` where masked) and doc ids."""

    input_ids: np.ndarray  # (B, T) int64
    targets: np.ndarray  # (B, T) int64
    doc_ids: np.ndarray  # (B, T) int64, from 0 in each window


class Rows(Protocol):
    """What :class:`WindowSampler` and :func:`eval_batches` need from a packing.

    ``len(rows)`` rows of ``context`` tokens make an epoch (the same number every epoch);
    ``batch`` and ``n_valid`` are pure functions of the row indices; ``order`` is a
    deterministic permutation of ``range(len(rows))`` for ``(seed, epoch)``.
    """

    shard: TokenShard
    context: int

    def __len__(self) -> int: ...

    def batch(self, indices: np.ndarray | Sequence[int]) -> MicroBatch: ...

    def n_valid(self, indices: np.ndarray | Sequence[int]) -> int: ...

    def order(self, seed: int, epoch: int) -> np.ndarray: ...


class PackedWindows:
    """Fixed-size windows over a shard; ``pad_last`` keeps a padded final window (validation)."""

    def __init__(self, shard: TokenShard, context: int, pad_last: bool = False):
        if context < 1:
            raise ValueError(f"context must be >= 1, got {context}")
        self.shard, self.context = shard, context
        n = max(shard.n_tokens - 1, 0)
        self.n_windows = -(-n // context) if pad_last else n // context

    def __len__(self) -> int:
        return self.n_windows

    def window(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Tokens and document ids (``-1`` on padding) of window ``i``, each ``(T+1,)``."""
        t = self.context
        start = i * t
        end = min(start + t + 1, self.shard.n_tokens)
        toks = np.zeros(t + 1, dtype=np.int64)
        toks[:end - start] = self.shard.tokens[start:end]
        docs = np.searchsorted(self.shard.doc_offsets, np.arange(start, start + t + 1), side="right") - 1
        docs = docs - docs[0]
        docs[end - start:] = -1
        return toks, docs

    def batch(self, indices: np.ndarray | list[int]) -> MicroBatch:
        """Stack windows into a micro-batch (pure function of the indices)."""
        toks, docs = zip(*(self.window(int(i)) for i in indices))
        toks_a, docs_a = np.stack(toks), np.stack(docs)  # (B, T+1)
        same = (docs_a[:, 1:] == docs_a[:, :-1]) & (docs_a[:, 1:] >= 0)
        targets = np.where(same, toks_a[:, 1:], IGNORE)
        doc_ids = np.where(docs_a[:, :-1] >= 0, docs_a[:, :-1], docs_a[:, :-1].max(initial=0) + 1)
        return MicroBatch(toks_a[:, :-1], targets, doc_ids)

    def n_valid(self, indices: np.ndarray | list[int]) -> int:
        """Number of non-ignored targets in these windows (cheap: doc ids only)."""
        t = self.context
        total = 0
        for i in indices:
            start = int(i) * t
            end = min(start + t + 1, self.shard.n_tokens)
            pos = np.arange(start, end)
            d = np.searchsorted(self.shard.doc_offsets, pos, side="right")
            total += int((d[1:] == d[:-1]).sum())
        return total

    def order(self, seed: int, epoch: int) -> np.ndarray:
        """Deterministic permutation of window indices for ``(seed, epoch)``."""
        return np.random.default_rng([seed, epoch]).permutation(self.n_windows)


@dataclass
class DataPosition:
    """Where the sampler is: the next global batch is ``step`` of ``epoch``."""

    epoch: int = 0
    step: int = 0

    def to_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "step": self.step}


class WindowSampler:
    """Yields this rank's micro-batches of each global batch of rows, in order, forever."""

    def __init__(self, data: Rows, micro_batch: int, accum: int, seed: int = 0,
                 rank: int = 0, world: int = 1, position: DataPosition | None = None):
        self.data, self.micro, self.accum = data, micro_batch, accum
        self.seed, self.rank, self.world = seed, rank, world
        self.global_batch = micro_batch * accum * world
        self.steps_per_epoch = len(data) // self.global_batch
        if self.steps_per_epoch < 1:
            raise ValueError(
                f"{data.shard.folder}/{data.shard.split}.bin has {len(data)} rows of "
                f"{data.context} tokens, fewer than one global batch of {self.global_batch}: "
                "pack more data or lower train.batch_size"
            )
        self.position = position or DataPosition()
        self._order_epoch, self._order = -1, np.zeros(0, dtype=np.int64)

    def global_indices(self, pos: DataPosition) -> np.ndarray:
        """Row indices of the global batch at ``pos``."""
        if self._order_epoch != pos.epoch:
            self._order, self._order_epoch = self.data.order(self.seed, pos.epoch), pos.epoch
        b = self.global_batch
        return self._order[pos.step * b:(pos.step + 1) * b]

    def next(self) -> tuple[list[MicroBatch], int]:
        """This rank's ``accum`` micro-batches and the global count of valid targets."""
        idx = self.global_indices(self.position)
        micros = [idx[j * self.micro:(j + 1) * self.micro]
                  for j in range(self.rank, self.accum * self.world, self.world)]
        batches = [self.data.batch(m) for m in micros]
        n_valid = self.data.n_valid(idx)
        step = self.position.step + 1
        if step >= self.steps_per_epoch:
            self.position = DataPosition(self.position.epoch + 1, 0)
        else:
            self.position = DataPosition(self.position.epoch, step)
        return batches, n_valid


def eval_batches(data: Rows, micro_batch: int, rank: int = 0, world: int = 1,
                 max_windows: int | None = None) -> Iterator[MicroBatch]:
    """This rank's slice of the first ``max_windows`` rows, as micro-batches.

    Every rank yields the same number of batches (needed by sharded models); slots past the
    end reuse row 0 with all targets ignored.
    """
    n = len(data) if max_windows is None else min(len(data), max_windows)
    per_rank = -(-n // world)
    mine = rank + world * np.arange(per_rank)
    for i in range(0, per_rank, micro_batch):
        idx = mine[i:i + micro_batch]
        mb = data.batch(np.where(idx < n, idx, 0))
        mb.targets[idx >= n] = IGNORE
        yield mb
