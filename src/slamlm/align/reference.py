"""Reference-model log-probs, computed once and stored, so DPO training runs only the policy.

One no-grad pass of the frozen reference over every pair (packed, document-masked) gives the
summed completion log-probs of chosen and rejected; they are stored as ``ref_logps.npy``
(N, 2) float32 beside ``ref_logps.json`` holding the pair ids, the data hash and the reference
checkpoint hash. A cache whose hashes do not match is recomputed.

Example:
    >>> # ref = reference_logps(model, pairs, "run/dpo/reference", ckpt_hash)  # (N, 2)
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from slamlm.align.data import PreferencePair, pairs_hash
from slamlm.align.packing import PackedBatch, chunk_by_tokens, pack_rows, sequence_logps
from slamlm.io import atomic_write_bytes, atomic_write_json

log = logging.getLogger(__name__)

CACHE_NPY, CACHE_JSON = "ref_logps.npy", "ref_logps.json"


def pair_sequences(pairs: Sequence[PreferencePair]) -> tuple[list[np.ndarray], list[int]]:
    """``[c0, r0, c1, r1, ...]`` full sequences and the index where each completion starts."""
    seqs, starts = [], []
    for p in pairs:
        c, r = p.sequences()
        seqs += [c, r]
        starts += [len(p.prompt), len(p.prompt)]
    return seqs, starts


def pack_pairs(pairs: Sequence[PreferencePair], row_tokens: int) -> PackedBatch:
    """All sequences of ``pairs`` in one padded batch of rows of <= ``row_tokens`` tokens."""
    seqs, starts = pair_sequences(pairs)
    return pack_rows(seqs, starts, row_tokens)


def pair_logps(model: torch.nn.Module, pairs: Sequence[PreferencePair], row_tokens: int,
               device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Summed completion log-probs ``(chosen (N,), rejected (N,))`` in one forward (grad on)."""
    lp = sequence_logps(model, pack_pairs(pairs, row_tokens).to(device))
    return lp[0::2], lp[1::2]


@torch.no_grad()
def compute_logps(model: torch.nn.Module, pairs: Sequence[PreferencePair],
                  max_tokens: int = 8192, device: torch.device | str = "cpu",
                  row_tokens: int = 1024) -> np.ndarray:
    """(N, 2) float32 [chosen, rejected] log-probs: up to ``max_tokens`` tokens per forward,
    packed in rows of ``row_tokens`` (attention cost grows with the row length squared)."""
    from tqdm import tqdm

    was_training = model.training
    model.eval()
    seqs, starts = pair_sequences(pairs)
    out = np.zeros(len(seqs), dtype=np.float32)
    pair_len = [len(seqs[2 * i]) + len(seqs[2 * i + 1]) for i in range(len(pairs))]
    groups = list(chunk_by_tokens(pair_len, max_tokens))
    for group in tqdm(groups, desc="reference log-probs", disable=len(groups) < 20):
        idx = [2 * i + k for i in group for k in (0, 1)]
        batch = pack_rows([seqs[j] for j in idx], [starts[j] for j in idx], row_tokens)
        out[idx] = sequence_logps(model, batch.to(device)).cpu().numpy()
    model.train(was_training)
    return out.reshape(-1, 2)


def checkpoint_hash(folder: str | Path) -> str:
    """sha256 (16 hex) of a checkpoint's weights and its ``model``/``vocab`` config."""
    import json

    folder = Path(folder)
    h = hashlib.sha256()
    meta = json.loads((folder / "config.json").read_text())
    h.update(json.dumps({k: meta.get(k) for k in ("model", "vocab")}, sort_keys=True).encode())
    with open(folder / "model.safetensors", "rb") as f:
        for block in iter(lambda: f.read(1 << 24), b""):
            h.update(block)
    return h.hexdigest()[:16]


def load_cached(cache_dir: str | Path, pairs: Sequence[PreferencePair], ref_hash: str
                ) -> np.ndarray | None:
    """The stored (N, 2) log-probs if they were made from these pairs and this reference."""
    import json

    cache_dir = Path(cache_dir)
    meta_path, npy = cache_dir / CACHE_JSON, cache_dir / CACHE_NPY
    if not (meta_path.is_file() and npy.is_file()):
        return None
    try:
        meta = json.loads(meta_path.read_text())
        arr = np.load(npy)
    except (OSError, ValueError) as e:
        log.warning("%s: unreadable reference cache (%s); recomputing", cache_dir, e)
        return None
    want = {"data_hash": pairs_hash(pairs), "reference_hash": ref_hash}
    stale = [k for k, v in want.items() if meta.get(k) != v]
    if stale or arr.shape != (len(pairs), 2):
        log.info("%s: reference cache is stale (%s); recomputing", cache_dir,
                 ", ".join(stale) or "shape")
        return None
    return arr


def reference_logps(model: torch.nn.Module, pairs: Sequence[PreferencePair],
                    cache_dir: str | Path, ref_hash: str, max_tokens: int = 8192,
                    device: torch.device | str = "cpu", row_tokens: int = 1024) -> np.ndarray:
    """Cached reference log-probs (N, 2): loaded when fresh, else computed and stored."""
    cached = load_cached(cache_dir, pairs, ref_hash)
    if cached is not None:
        log.info("reference log-probs of %d pairs loaded from %s", len(pairs), cache_dir)
        return cached
    arr = compute_logps(model, pairs, max_tokens, device, row_tokens)
    cache_dir = Path(cache_dir)
    buf = io.BytesIO()
    np.save(buf, arr)
    atomic_write_bytes(cache_dir / CACHE_NPY, buf.getvalue())
    atomic_write_json(cache_dir / CACHE_JSON, {
        "data_hash": pairs_hash(pairs), "reference_hash": ref_hash, "n_pairs": len(pairs),
        "ids": [p.id for p in pairs], "columns": ["chosen", "rejected"],
    })
    log.info("reference log-probs of %d pairs stored in %s", len(pairs), cache_dir)
    return arr
