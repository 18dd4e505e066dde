"""Crops are aligned to unit frames, reproducible from (seed, step), and split over ranks."""

from __future__ import annotations

import numpy as np
import torch

from slamlm.units.extractor import dedup
from slamlm.vocoder.data import Pair, crop_batch, infer_hop, load_pairs

HOP = 4


def _pair(i: int, n: int) -> Pair:
    frames = np.repeat(np.arange(n) % 5, 2)[:n] + i  # runs of 2
    u, d = dedup(frames)
    wav = np.repeat(np.arange(n, dtype=np.float32), HOP) + 1000 * i  # sample -> its frame
    return Pair(f"p{i}", frames, u, d, wav)


def test_crops_are_frame_aligned_and_reproducible():
    pairs = [_pair(i, 30 + 7 * i) for i in range(3)]
    a = crop_batch(pairs, step=5, batch=6, frames=9, hop=HOP, seed=1)
    b = crop_batch(pairs, step=5, batch=6, frames=9, hop=HOP, seed=1)
    c = crop_batch(pairs, step=6, batch=6, frames=9, hop=HOP, seed=1)
    assert torch.equal(a.wav, b.wav) and not torch.equal(a.wav, c.wav)
    assert a.frames.shape == (6, 9) and a.wav.shape == (6, 9 * HOP)
    for j in range(6):
        w = a.wav[j].numpy()
        frame_idx = w[::HOP] % 1000  # every hop-th sample names the frame it belongs to
        assert (np.diff(frame_idx) == 1).all() and (w.reshape(9, HOP) == w[::HOP, None]).all()
        pair = pairs[int(w[0] // 1000)]
        s = int(frame_idx[0])
        assert (a.frames[j].numpy() == pair.frames[s:s + 9]).all()
        u, d = a.units[j].numpy(), a.durations[j].numpy()
        n = int((d > 0).sum())
        assert d.sum() == 9 and (np.repeat(u[:n], d[:n]) == a.frames[j].numpy()).all()


def test_rank_shares_make_the_global_batch():
    pairs = [_pair(i, 40) for i in range(4)]
    full = crop_batch(pairs, 3, 4, 8, HOP, seed=0)
    r0 = crop_batch(pairs, 3, 4, 8, HOP, seed=0, part=(0, 2))
    r1 = crop_batch(pairs, 3, 4, 8, HOP, seed=0, part=(1, 2))
    assert torch.equal(full.wav[0::2], r0.wav) and torch.equal(full.wav[1::2], r1.wav)


def test_hop_and_heldout_from_a_real_units_folder(tiny_units):
    data = load_pairs(tiny_units, heldout=2)
    assert data.hop == 640 and len(data.heldout) == 2 and len(data.train) == 4
    assert all(len(p.wav) == len(p.frames) * 640 for p in data.train)
    assert load_pairs(tiny_units, heldout=2).heldout[0].id == data.heldout[0].id
    assert infer_hop([{"seconds": 2.0, "sr": 16000, "n_frames": 100}]) == 320
