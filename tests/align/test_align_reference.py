"""Stored reference log-probs equal on-the-fly ones; the cache is reused and invalidated."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from slamlm.align.data import make_pair
from slamlm.align.reference import (
    CACHE_NPY,
    checkpoint_hash,
    compute_logps,
    pair_logps,
    reference_logps,
)
from slamlm.model import SpeechLM, named_shape
from slamlm.model.checkpoint import load_checkpoint, save_checkpoint
from slamlm.vocab import UnitVocab

V = UnitVocab(n_units=10)


def _pairs(n=7, seed=0):
    rng = np.random.default_rng(seed)
    return [make_pair(f"p{i}", rng.integers(0, 10, rng.integers(1, 9)),
                      rng.integers(0, 10, rng.integers(1, 12)),
                      rng.integers(0, 10, rng.integers(1, 12)), V) for i in range(n)]


def _model(seed=0):
    torch.manual_seed(seed)
    return SpeechLM(named_shape("tiny", vocab_size=V.size, initializer_range=0.3)).eval()


def _on_the_fly(model, pairs):
    """TRL style: each sequence on its own forward, no packing, no doc ids."""
    out = []
    with torch.no_grad():
        for p in pairs:
            row = []
            for comp in (p.chosen, p.rejected):
                seq = torch.from_numpy(np.concatenate([p.prompt, comp]))[None]
                lp = torch.log_softmax(model(seq).double(), -1)[0, :-1]
                tok = seq[0, 1:]
                row.append(lp.gather(1, tok[:, None])[len(p.prompt) - 1:].sum().item())
            out.append(row)
    return np.array(out)


def test_stored_reference_equals_on_the_fly(tmp_path):
    model, pairs = _model(), _pairs()
    ckpt = save_checkpoint(model, {"vocab": V}, tmp_path / "ref")
    ref_model, _ = load_checkpoint(ckpt)
    h = checkpoint_hash(ckpt)
    stored = reference_logps(ref_model, pairs, tmp_path / "cache", h, max_tokens=40)
    expect = _on_the_fly(model, pairs)
    assert stored.shape == (7, 2) and stored.dtype == np.float32
    assert np.abs(stored - expect).max() < 1e-5
    assert np.abs(stored[:, 0] - stored[:, 1]).max() > 0.1  # not a degenerate model
    # the same numbers whatever the packing (one pair per forward vs everything in one row)
    assert np.abs(compute_logps(model, pairs, max_tokens=1) - stored).max() < 1e-5
    padded = compute_logps(model, pairs, max_tokens=10_000, row_tokens=0)  # no doc mask path
    assert np.abs(padded - stored).max() < 1e-5
    c, r = pair_logps(model, pairs, row_tokens=64)
    assert np.abs(torch.stack([c, r], 1).detach().numpy() - expect).max() < 1e-5


def test_reference_cache_reused_and_recomputed_when_stale(tmp_path):
    model, pairs = _model(), _pairs()
    ckpt = save_checkpoint(model, {"vocab": V}, tmp_path / "ref")
    h = checkpoint_hash(ckpt)
    first = reference_logps(model, pairs, tmp_path / "cache", h)
    npy = tmp_path / "cache" / CACHE_NPY
    npy_time = npy.stat().st_mtime_ns
    again = reference_logps(_model(seed=1), pairs, tmp_path / "cache", h)  # same key: no pass
    assert np.array_equal(first, again) and npy.stat().st_mtime_ns == npy_time
    # another reference checkpoint -> other hash -> recomputed with that model
    other = save_checkpoint(_model(seed=1), {"vocab": V}, tmp_path / "ref2")
    h2 = checkpoint_hash(other)
    assert h2 != h
    new = reference_logps(_model(seed=1), pairs, tmp_path / "cache", h2)
    assert np.abs(new - first).max() > 1e-3
    assert np.abs(new - _on_the_fly(_model(seed=1), pairs)).max() < 1e-5
    # other data -> recomputed (shape follows the data)
    fewer = reference_logps(_model(seed=1), pairs[:3], tmp_path / "cache", h2)
    assert fewer.shape == (3, 2) and np.allclose(fewer, new[:3], atol=1e-5)


def test_pair_logps_has_gradients():
    model, pairs = _model(), _pairs(3)
    c, r = pair_logps(model.train(), pairs, row_tokens=32)
    (c.sum() - r.sum()).backward()
    g = model.model.embed_tokens.weight.grad
    assert g is not None and torch.isfinite(g).all() and g.abs().sum() > 0
    with pytest.raises(ValueError, match="completion start"):
        from slamlm.align.packing import pack_rows
        pack_rows([np.array([1, 2])], [2], 8)
