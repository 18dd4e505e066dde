"""Whole-document packings (first-fit decreasing, one per row): documents stay whole, targets
stay inside documents, an epoch covers every token once, order/rank split/resume are exact."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from slamlm.data import PackedDocuments, PackedWindows, TokenShard, WindowSampler, packed_rows
from slamlm.data.documents import first_fit_decreasing, row_stats, split_pieces
from slamlm.data.windows import IGNORE, DataPosition, eval_batches
from slamlm.vocab import UnitVocab


def _shard(lengths) -> TokenShard:
    """Token ``i`` of the stream is ``i + 1`` (never the pad id 0): a token names its place."""
    lens = np.asarray(lengths, dtype=np.int64)
    offsets = np.r_[0, np.cumsum(lens)[:-1]].astype(np.int64)
    tokens = np.arange(1, int(lens.sum()) + 1, dtype=np.uint32)
    return TokenShard(Path("."), "test", tokens, offsets, lens, UnitVocab(10), {})


def _lognormal(n: int, mean: float, seed: int = 0, hi: int | None = None) -> np.ndarray:
    lens = np.maximum(3, np.random.default_rng(seed).lognormal(np.log(mean) - 0.18, 0.6, n))
    return lens.astype(np.int64) if hi is None else np.minimum(hi, lens.astype(np.int64))


def _rows(data: PackedDocuments):
    mb = data.batch(np.arange(len(data)))
    return mb.input_ids, mb.targets, mb.doc_ids


def _naive_ffd(lengths: np.ndarray, cap: int) -> np.ndarray:
    room: list[int] = []
    out = np.empty(len(lengths), dtype=np.int64)
    for i in np.argsort(-lengths, kind="stable"):
        j = next((j for j, r in enumerate(room) if r >= lengths[i]), len(room))
        if j == len(room):
            room.append(cap)
        room[j] -= int(lengths[i])
        out[i] = j
    return out


def test_ffd_equals_placing_items_one_by_one():
    rng = np.random.default_rng(0)
    for _ in range(100):
        cap = int(rng.integers(2, 48))
        lens = rng.integers(1, cap + 1, int(rng.integers(0, 120)))
        assert np.array_equal(first_fit_decreasing(lens, cap), _naive_ffd(lens, cap))
    with pytest.raises(ValueError, match="lengths"):
        first_fit_decreasing(np.array([5]), 4)


@pytest.mark.parametrize("packing", ["ffd", "doc_per_row"])
def test_documents_stay_whole_and_targets_stay_inside(packing):
    T = 32
    shard = _shard(_lognormal(300, 10, hi=80))  # some documents longer than T
    data = PackedDocuments(shard, T, packing, seed=1)
    x, y, d = _rows(data)
    doc_of = np.searchsorted(shard.doc_offsets, np.arange(shard.n_tokens), side="right") - 1
    pieces_seen = []
    for r in range(len(data)):
        real = x[r] > 0
        n = int(real.sum())
        assert real[:n].all() and not real[n:].any()  # real tokens first, then padding
        assert d[r, 0] == 0 and np.all(np.diff(d[r]) >= 0)  # ids from 0 per row
        assert (d[r, n:] == (d[r, n - 1] + 1 if n else 0)).all()  # padding: its own document
        for j in np.unique(d[r, :n]):
            toks = x[r][d[r] == j] - 1  # stream positions of this piece
            assert np.array_equal(toks, np.arange(toks[0], toks[0] + toks.size))  # contiguous
            assert np.unique(doc_of[toks]).size == 1  # one document
            pieces_seen.append((int(toks[0]), int(toks.size)))
        valid = y[r] != IGNORE
        # target t is token t+1 of the same piece; never across a boundary or on padding
        assert np.array_equal(valid[:-1], (d[r, 1:] == d[r, :-1]) & real[1:])
        assert not valid[-1] and np.array_equal(y[r][valid], x[r][valid] + 1)
    # a document is cut only when longer than T, into T-token pieces (the last one shorter)
    want = list(zip(*split_pieces(shard.doc_offsets, shard.doc_lengths, T)))
    assert sorted(pieces_seen) == sorted((int(o), int(n)) for o, n in want)
    short = shard.doc_lengths <= T
    assert sum(1 for _, n in pieces_seen) == short.sum() + sum(
        -(-int(n) // T) for n in shard.doc_lengths[~short])
    assert data.n_valid(np.arange(len(data))) == int((y != IGNORE).sum())


@pytest.mark.parametrize("packing", ["ffd", "doc_per_row"])
def test_an_epoch_covers_every_token_once(packing):
    shard = _shard(_lognormal(400, 12, seed=2, hi=40))
    data = PackedDocuments(shard, 32, packing)
    x, _, _ = _rows(data)
    got = np.sort(x[x > 0])
    assert np.array_equal(got, np.arange(1, shard.n_tokens + 1))
    # the sampler visits each row of an epoch once (all but the remainder of a global batch)
    s = WindowSampler(data, micro_batch=4, accum=2, seed=5)
    seen = np.concatenate([s.global_indices(DataPosition(0, k)) for k in range(s.steps_per_epoch)])
    assert np.unique(seen).size == seen.size == s.steps_per_epoch * 8 > len(data) - 8


def test_padding_is_small_with_ffd_and_large_one_per_row():
    T = 1024
    shard = _shard(_lognormal(3000, 300, seed=3))  # ~30 % of the context, tail above T
    ffd, one = PackedDocuments(shard, T, "ffd"), PackedDocuments(shard, T, "doc_per_row")
    assert ffd.padding_fraction() < 0.02
    assert one.padding_fraction() > 0.6
    stats = row_stats(ffd)
    assert stats["padding"] == pytest.approx(ffd.padding_fraction())
    # whole documents: the same mean context per target whichever way they are laid out,
    # longer than with windows that cut them
    assert row_stats(one, max_rows=None)["mean_context"] == pytest.approx(stats["mean_context"])
    win = row_stats(PackedWindows(shard, T))
    assert win["padding"] == 0 and win["mean_context"] < 0.85 * stats["mean_context"]


def test_layout_and_order_are_deterministic():
    shard = _shard(_lognormal(200, 10, seed=4, hi=30))
    a, b = PackedDocuments(shard, 32, seed=7), PackedDocuments(shard, 32, seed=7)
    assert np.array_equal(a.batch(range(len(a))).input_ids, b.batch(range(len(b))).input_ids)
    assert np.array_equal(a.order(3, 0), b.order(3, 0))
    assert not np.array_equal(a.order(3, 0), a.order(3, 1))
    first = a.piece_lengths[a.row_ptr[:-1]]  # rows are numbered at random, not in FFD order
    assert not np.all(np.diff(first) <= 0)
    c = PackedDocuments(shard, 32, seed=8)  # another seed: the same number of rows, reshuffled
    assert len(c) == len(a) and not np.array_equal(c.piece_offsets, a.piece_offsets)


def test_rank_split_equals_one_process_and_resume_is_exact():
    data = PackedDocuments(_shard(_lognormal(300, 10, seed=5, hi=40)), 32)
    one = WindowSampler(data, micro_batch=2, accum=4, seed=3)
    steps = [one.next() for _ in range(one.steps_per_epoch + 2)]  # crosses an epoch
    assert one.position.epoch == 1
    ranks = [WindowSampler(data, micro_batch=2, accum=2, seed=3, rank=r, world=2) for r in range(2)]
    for micros, n_valid in steps:
        per_rank = [s.next() for s in ranks]
        assert all(nv == n_valid for _, nv in per_rank)
        for j, mb in enumerate(micros):  # micro j lives on rank j % 2, slot j // 2
            other = per_rank[j % 2][0][j // 2]
            assert all(np.array_equal(getattr(mb, k), getattr(other, k))
                       for k in ("input_ids", "targets", "doc_ids"))
    again = WindowSampler(data, micro_batch=2, accum=4, seed=3,
                          position=DataPosition(**one.position.to_dict()))
    want, got = one.next(), again.next()
    assert want[1] == got[1]
    assert all(np.array_equal(w.input_ids, g.input_ids) for w, g in zip(want[0], got[0]))


def test_eval_batches_and_factory():
    shard = _shard(_lognormal(50, 10, seed=6, hi=30))
    data = packed_rows(shard, 32, "ffd")
    batches = list(eval_batches(data, micro_batch=3, rank=0, world=1))
    n = sum(int((b.targets != IGNORE).sum()) for b in batches)
    assert n == int((shard.doc_lengths - 1).sum())  # whole documents: L - 1 targets each
    assert isinstance(packed_rows(shard, 32, "windows", pad_last=True), PackedWindows)
    assert packed_rows(shard, 32, "doc_per_row").packing == "doc_per_row"
    with pytest.raises(ValueError, match="data.packing"):
        packed_rows(shard, 32, "greedy")
