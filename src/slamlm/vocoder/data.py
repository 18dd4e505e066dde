"""(units, audio) pairs from a units folder and the random, frame-aligned training crops.

Each units record (``slam units extract``) names its audio (``path``) and holds deduplicated
``units`` + ``durations``; the frame-level units are ``repeat(units, durations)``, and frame
``i`` covers samples ``[i * hop, (i + 1) * hop)`` of the 16 kHz audio (``hop`` = samples per
unit frame: 640 for 25 Hz units, 320 for 50 Hz). Crops are drawn by a generator seeded with
``(seed, step)``, so the data position is the step count alone (exact resume).

Example:
    >>> # data = load_pairs("run/units", heldout=8)
    >>> # batch = crop_batch(data.train, step=0, batch=8, frames=20, hop=data.hop, seed=0)
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from slamlm.audio import AudioError, load_audio
from slamlm.io import FailureLog

log = logging.getLogger(__name__)

HOPS = (160, 320, 640)  # samples per unit frame at 16 kHz: 100, 50 and 25 Hz units


@dataclass
class Pair:
    """One utterance: frame-level units (F,), dedup units/durations, audio (F * hop,), and
    its speaker embedding (D,) when the vocoder is speaker-conditioned."""

    id: str
    frames: np.ndarray
    units: np.ndarray
    durations: np.ndarray
    wav: np.ndarray
    spkr: np.ndarray | None = None


@dataclass
class PairSet:
    train: list[Pair]
    heldout: list[Pair]
    hop: int
    n_units: int  # max unit id + 1 over the folder (or the identity's k when larger)
    identity: dict[str, Any]


def infer_hop(records: list[dict[str, Any]]) -> int:
    """Samples per unit frame: the one of :data:`HOPS` nearest to ``seconds * sr / n_frames``."""
    ratios = [r["seconds"] * r.get("sr", 16000) / r["n_frames"] for r in records
              if r.get("n_frames") and r.get("seconds")]
    if not ratios:
        raise ValueError("units records carry no n_frames/seconds: cannot tell the frame rate "
                         "(pass --hop)")
    med = float(np.median(ratios))
    return min(HOPS, key=lambda h: abs(h - med))


def heldout_ids(ids: list[str], n: int) -> set[str]:
    """``n`` ids chosen by a hash of the id (stable across runs and folder order)."""
    ranked = sorted(ids, key=lambda i: hashlib.sha1(i.encode()).hexdigest())
    return set(ranked[:n])


def load_pairs(folder: str | Path, heldout: int = 8, hop: int = 0, max_items: int = 0,
               failures: Path | None = None) -> PairSet:
    """Read every record of a units folder and its audio (cut or zero-padded to F * hop)."""
    import json

    from slamlm.units.runner import read_units

    folder = Path(folder)
    records = list(read_units(folder))
    if max_items:
        records = records[:max_items]
    for i, r in enumerate(records):
        missing = [k for k in ("id", "path", "units", "durations") if k not in r]
        if missing:
            raise ValueError(f"{folder}: record {i + 1} ({r.get('id', '?')}) lacks {missing}; "
                             f"re-run slam units extract (records need path, units, durations)")
    hop = hop or infer_hop(records)
    ident_path = folder / "identity.json"
    identity = json.loads(ident_path.read_text()) if ident_path.is_file() else {}
    fail = FailureLog(failures, stage="vocoder") if failures else None
    pairs: list[Pair] = []
    for r in records:
        path = Path(r["path"])
        if not path.is_absolute() and not path.exists():
            path = folder / path
        try:
            wav = load_audio(path)
        except AudioError as e:
            if fail is None:
                raise ValueError(f"{folder}: record {r['id']}: audio {path}: {e.reason}") from e
            fail.add(r["id"], str(path), e.reason)
            continue
        units = np.asarray(r["units"], dtype=np.int64)
        durs = np.asarray(r["durations"], dtype=np.int64)
        frames = np.repeat(units, durs)
        n = len(frames) * hop
        wav = np.pad(wav[:n], (0, max(0, n - len(wav)))).astype(np.float32)
        pairs.append(Pair(str(r["id"]), frames, units, durs, wav))
    if len(pairs) <= heldout:
        raise ValueError(f"{folder}: {len(pairs)} readable utterances, need more than the "
                         f"{heldout} held out (lower --heldout)")
    held = heldout_ids([p.id for p in pairs], heldout)
    n_units = max(int(identity.get("k") or 0), max(int(p.frames.max()) + 1 for p in pairs))
    return PairSet([p for p in pairs if p.id not in held], [p for p in pairs if p.id in held],
                   hop, n_units, identity)


@dataclass
class CropBatch:
    """``frames`` (B, F) unit ids, ``wav`` (B, F * hop); ``units``/``durations`` (B, U) the
    dedup runs of each crop (padded with 0, ``dur_mask`` marks runs not cut by the crop);
    ``spkr`` (B, D) the crops' utterance speaker embeddings (None when the pairs have none)."""

    frames: torch.Tensor
    wav: torch.Tensor
    units: torch.Tensor
    durations: torch.Tensor
    dur_mask: torch.Tensor
    spkr: torch.Tensor | None = None

    def map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> CropBatch:
        """The same batch with ``fn`` applied to every tensor (slicing, device moves)."""
        return CropBatch(*(None if x is None else fn(x) for x in (
            self.frames, self.wav, self.units, self.durations, self.dur_mask, self.spkr)))


def crop_batch(pairs: list[Pair], step: int, batch: int, frames: int, hop: int, seed: int,
               part: tuple[int, int] = (0, 1)) -> CropBatch:
    """The ``step``-th global batch of random ``frames``-long crops; ``part`` = (rank, world)
    takes this rank's share. Utterances are drawn in proportion to their length."""
    from slamlm.units.extractor import dedup

    rng = np.random.default_rng([seed, step])
    lens = np.array([len(p.frames) for p in pairs], dtype=np.float64)
    f = int(min(frames, lens.max()))
    idx = rng.choice(len(pairs), size=batch, p=lens / lens.sum())
    starts = rng.random(batch)
    rank, world = part
    fr, wv, runs, spk = [], [], [], []
    for j in range(rank, batch, world):
        p = pairs[idx[j]]
        spk.append(p.spkr)
        avail = max(len(p.frames) - f, 0)
        s = int(starts[j] * (avail + 1))
        seg = p.frames[s: s + f]
        seg = np.pad(seg, (0, f - len(seg)), mode="edge")
        w = p.wav[s * hop: (s + f) * hop]
        fr.append(seg)
        wv.append(np.pad(w, (0, f * hop - len(w))))
        u, d = dedup(seg)
        whole = np.ones(len(u), dtype=bool)
        whole[0] = s == 0 or p.frames[s - 1] != seg[0]
        whole[-1] = s + f >= len(p.frames) or p.frames[s + f] != seg[-1]
        runs.append((u, d, whole))
    width = max(len(r[0]) for r in runs)
    pad = lambda a, v: np.pad(a, (0, width - len(a)), constant_values=v)  # noqa: E731
    return CropBatch(torch.from_numpy(np.stack(fr)), torch.from_numpy(np.stack(wv)),
                     torch.from_numpy(np.stack([pad(r[0], 0) for r in runs])),
                     torch.from_numpy(np.stack([pad(r[1], 0) for r in runs])),
                     torch.from_numpy(np.stack([pad(r[2], False) for r in runs])),
                     None if spk[0] is None else torch.from_numpy(np.stack(spk)))
