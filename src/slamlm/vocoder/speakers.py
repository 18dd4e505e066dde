"""Per-utterance speaker embeddings for a speaker-conditioned vocoder, computed once and cached.

Each utterance's embedding comes from its own (whole) training audio; the cache is
``OUT/speakers.npz`` (``ids``, ``emb`` (N, dim), ``encoder``), reused when it holds every id
and the same encoder, so a resumed run reads it instead of re-encoding the corpus.

Example:
    >>> # embedder = attach_speakers(data, "resemblyzer", Path("run/voc/speakers.npz"))
    >>> # data.train[0].spkr.shape   # (256,)
"""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

import numpy as np

from slamlm.io import atomic_write_bytes
from slamlm.vocoder.data import PairSet

log = logging.getLogger(__name__)


def _read_cache(path: Path, encoder_id: str) -> dict[str, np.ndarray]:
    if not path.is_file():
        return {}
    with np.load(path) as z:
        if str(z["encoder"]) != encoder_id:
            log.info("%s: made by %s, not %s: recomputing", path, z["encoder"], encoder_id)
            return {}
        return {str(i): e for i, e in zip(z["ids"], z["emb"])}


def attach_speakers(data: PairSet, name: str, cache: Path | None,
                    device: str = "cpu") -> dict[str, Any]:
    """Set ``pair.spkr`` on every train and held-out pair (cached in ``cache``); returns the
    ``embedder_params`` the generator config records (``name``, ``id``, ``dim``)."""
    from slamlm.units.speaker import load_speaker_encoder

    enc = load_speaker_encoder(name, device=device)
    pairs = data.train + data.heldout
    known = _read_cache(cache, enc.id) if cache else {}
    todo = [p for p in pairs if p.id not in known]
    if todo:
        log.info("speaker embeddings (%s) of %d utterances", enc.id, len(todo))
        known.update({p.id: enc.embed(p.wav) for p in todo})
        if cache:
            ids = sorted(known)
            buf = io.BytesIO()
            np.savez(buf, ids=np.array(ids), emb=np.stack([known[i] for i in ids]),
                     encoder=np.array(enc.id))
            cache.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(cache, buf.getvalue())
    for p in pairs:
        p.spkr = np.asarray(known[p.id], dtype=np.float32)
    return {"name": name, "id": enc.id, "dim": enc.dim}
