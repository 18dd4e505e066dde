"""``UnitExtractor``: encoder + k-means -> frame-level unit ids; ``dedup`` for run lengths.

Eval, generation and DPO re-create the extractor a model was trained with from the identity
stored in its checkpoint (``UnitExtractor.from_identity``).

Example:
    >>> units, durations = dedup([5, 5, 7, 5, 5, 5])
    >>> units.tolist(), durations.tolist()
    ([5, 7, 5], [2, 1, 3])
    >>> # ex = UnitExtractor.load("mel", "run/units/kmeans-1a2b3c4d5e6f7a8b.safetensors")
    >>> # ex.encode([wav])[0]  # (n_frames,) int64 unit ids, not deduplicated
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from slamlm.device import resolve_device
from slamlm.units.encoders import HubertEncoder, MelEncoder, load_encoder
from slamlm.units.kmeans import KMeans, load_kmeans

log = logging.getLogger(__name__)


def dedup(units: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Remove consecutive repeats: ``(units, durations)`` with ``durations.sum() == len(units)``."""
    arr = np.asarray(units, dtype=np.int64).reshape(-1)
    if arr.size == 0:
        return arr, np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.concatenate([[True], arr[1:] != arr[:-1]]))
    durations = np.diff(np.concatenate([starts, [arr.size]]))
    return arr[starts], durations.astype(np.int64)


_DTYPES = {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp16": torch.float16,
           "float16": torch.float16, "fp32": torch.float32, "float32": torch.float32}


def parse_dtype(dtype: str | torch.dtype | None) -> torch.dtype | None:
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in _DTYPES:
        raise ValueError(f"dtype {dtype!r}: use one of {sorted(_DTYPES)}")
    return _DTYPES[dtype]


class UnitExtractor:
    """An encoder and (optionally) a k-means checked to belong together."""

    def __init__(self, encoder: MelEncoder | HubertEncoder, kmeans: KMeans | None):
        self.encoder = encoder
        self.kmeans = kmeans
        if kmeans is not None:
            kmeans.check(encoder.id, encoder.dim, encoder.layer)
            kmeans.to(getattr(encoder, "device", "cpu"))

    @classmethod
    def load(cls, encoder: str, kmeans: str | Path | KMeans | None, layer: int = 11,
             device: str | torch.device | None = "cpu", dtype: str | torch.dtype | None = None,
             pad: int | None = None) -> UnitExtractor:
        """``encoder`` is ``"mel"`` or ``"hubert:<folder or hub id>"``; ``kmeans`` a file."""
        dev = resolve_device(device) if not isinstance(device, torch.device) else device
        enc = load_encoder(encoder, layer=layer, device=dev, dtype=parse_dtype(dtype), pad=pad)
        km = kmeans if isinstance(kmeans, KMeans) or kmeans is None else load_kmeans(kmeans)
        return cls(enc, km)

    @property
    def min_seconds(self) -> float:
        return self.encoder.min_seconds

    def features(self, wavs: list[np.ndarray]) -> list[torch.Tensor]:
        """Encoder features (n_frames_i, dim) per waveform (16 kHz mono float32)."""
        short = [i for i, w in enumerate(wavs) if len(w) < self.min_seconds * 16000]
        if short:
            raise ValueError(f"waveform {short[0]} is {len(wavs[short[0]]) / 16000:.3f} s, "
                             f"under the encoder's minimum of {self.min_seconds:.3f} s")
        return self.encoder.features(wavs)

    def encode(self, wavs: list[np.ndarray]) -> list[np.ndarray]:
        """Frame-level unit ids (not deduplicated) per waveform; batch invariant."""
        if self.kmeans is None:
            raise ValueError("this extractor has no k-means: load one (--kmeans) or fit one "
                             "(slam units fit-kmeans)")
        feats = self.features(wavs)
        if not feats:
            return []
        lab = self.kmeans.assign(torch.cat(feats)).cpu().numpy()
        cuts = np.cumsum([len(f) for f in feats])[:-1]
        return [a.astype(np.int64) for a in np.split(lab, cuts)]

    def encode_paths(self, paths: Sequence[str | Path]) -> list[np.ndarray]:
        """Load (mono, 16 kHz, validated) and encode audio files."""
        from slamlm.audio import load_audio

        return self.encode([load_audio(p, min_seconds=self.min_seconds) for p in paths])

    def identity(self) -> dict[str, Any]:
        """What re-creates this extractor (stored in units files and checkpoints)."""
        km = self.kmeans
        d = {"encoder": self.encoder.id, "layer": self.encoder.layer, "dim": self.encoder.dim,
             "k": km.k if km else None, "kmeans_hash": km.hash if km else None,
             "kmeans_path": str(Path(km.path).resolve()) if km and km.path else None}
        if isinstance(self.encoder, HubertEncoder):  # input padding changes the frame grid
            d["pad"] = self.encoder.pad
        if hasattr(self.encoder, "weights_hash"):  # a trained phone encoder (units/phones.py)
            d["encoder_hash"] = self.encoder.weights_hash
        return d

    @classmethod
    def from_identity(cls, d: dict[str, Any], device: str | torch.device | None = "cpu",
                      kmeans_path: str | Path | None = None) -> UnitExtractor:
        """Re-create from :meth:`identity`; checks the k-means file still has the same hash."""
        path = kmeans_path or d.get("kmeans_path")
        if d.get("kmeans_hash") and not path:
            raise ValueError(f"identity names k-means {d['kmeans_hash']} but no kmeans_path; "
                             f"pass kmeans_path=")
        pad = None
        if str(d["encoder"]).startswith("hubert:"):  # identities from before padding: pad 0
            pad = int(d.get("pad", 0))
        ex = cls.load(d["encoder"], path, layer=int(d.get("layer") or 11), device=device, pad=pad)
        have = getattr(ex.encoder, "weights_hash", None)
        if d.get("encoder_hash") and have != d["encoder_hash"]:
            raise ValueError(f"encoder {d['encoder']} has weights {have}, but the units were made "
                             f"with {d['encoder_hash']} (retrained since?): use the encoder they "
                             f"were made with")
        if d.get("kmeans_hash") and ex.kmeans is not None and ex.kmeans.hash != d["kmeans_hash"]:
            raise ValueError(f"k-means {path} has hash {ex.kmeans.hash}, but the units were made "
                             f"with {d['kmeans_hash']}: pass the k-means they were made with")
        return ex
