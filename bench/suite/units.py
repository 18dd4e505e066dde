"""Part 4: unit extraction with a random-weight HuBERT-base 25 Hz, decoding included.

FLAC clips of 10-20 s (``units_throughput.make_clips``) are probed, decoded and encoded; x real
time = audio seconds / wall seconds. Model loading is outside the timed region, one warm-up
clip inside neither. Rows:
  - the peer way (as ``shared/tools/hf_anchor_units_throughput.py``): fp32, batches of 8
    longest first, zero-padded without an attention mask, every hidden state returned,
    k-means assignment with numpy on the CPU;
  - ours (``slamlm.units``: ``UnitExtractor`` + the runner's ``plan_batches``/``iter_decoded``
    with decoding workers): bf16, cut after layer 11, k-means on the GPU. With the group-norm
    feature extractor of the real mHuBERT-25Hz only equal-length files share a batch (units
    must not depend on padding); the layer-norm variant of the same shape batches padded.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import torch
import units_throughput as ut
from eval_throughput import timed

from slamlm.audio import load_audio, probe_audio
from slamlm.corpora import AudioItem
from slamlm.units.extractor import UnitExtractor, dedup
from slamlm.units.kmeans import KMeans
from slamlm.units.runner import iter_decoded, plan_batches
from suite.common import Part

TINY = dict(hidden=32, layers=2, heads=2, ffn=64, conv=32)  # dry-run HuBERT


@torch.no_grad()
def peer_units(model, paths: list[Path], centroids: np.ndarray, n_frames, layer: int,
               dev: torch.device, batch: int = 8) -> dict[str, np.ndarray]:
    """Frame units per file the peer's way (see the module docstring)."""
    c2 = (centroids ** 2).sum(1)
    secs = [probe_audio(q).seconds for q in paths]
    order = sorted(range(len(paths)), key=lambda i: -secs[i])
    out = {}
    for s in range(0, len(order), batch):
        idx = order[s:s + batch]
        wavs = [load_audio(paths[i]) for i in idx]
        x = torch.zeros(len(wavs), max(len(w) for w in wavs))
        for r, w in enumerate(wavs):
            x[r, :len(w)] = torch.from_numpy(w)
        h = model(x.to(dev), output_hidden_states=True).hidden_states[layer].float().cpu().numpy()
        for r, i in enumerate(idx):
            f = h[r, :n_frames(len(wavs[r]))]
            d = (f ** 2).sum(1, keepdims=True) - 2 * f @ centroids.T + c2  # as sklearn does
            out[paths[i].stem] = d.argmin(1)
            dedup(out[paths[i].stem])
    return out


def our_units(ex: UnitExtractor, paths: list[Path], num_workers: int) -> dict[str, np.ndarray]:
    """Frame units per file with slamlm's extractor and the runner's batching/decoding."""
    items = [AudioItem(q.stem, str(q), path=str(q)) for q in paths]
    batches = plan_batches([probe_audio(q).seconds for q in paths], batch_seconds=320.0)
    out = {}
    for batch in iter_decoded(items, batches, ex.min_seconds, num_workers):
        for b, frames in zip(batch, ex.encode([b["wav"] for b in batch])):
            dedup(frames)
            out[b["id"]] = frames
    return out


def _kmeans(ex: UnitExtractor, paths: list[Path], k: int) -> KMeans:
    """k centroids picked among the first clips' frames (the same for every variant)."""
    feats = torch.cat(ex.features([load_audio(q) for q in paths[:4]])).cpu()
    pick = torch.from_numpy(np.random.default_rng(0).choice(len(feats), k, replace=False))
    return KMeans(feats[pick], encoder=ex.encoder.id, layer=ex.encoder.layer)


def _agreement(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    same = [float(np.mean(a[i] == b[i])) for i in a if i in b and len(a[i]) == len(b[i])]
    return round(float(np.mean(same)), 4) if same else float("nan")


def part_units(p: Part) -> None:
    dev = p.device
    n, lo, hi, size, layer, k = (4, 1.0, 2.0, TINY, 2, 16) if p.dry else (160, 10.0, 20.0, {}, 11, 500)
    (p.work / "audio").mkdir()
    audio_s = ut.make_clips(p.work / "audio", n, lo=lo, hi=hi)
    paths = sorted((p.work / "audio").glob("*.flac"))
    p.notes.append(f"{n} FLAC clips of {lo:g}-{hi:g} s ({audio_s / 3600:.2f} h), layer {layer}, "
                   f"k={k}; {'tiny' if p.dry else 'base-size'} random HuBERT, 25 Hz conv stack")
    peer_rate, peer = None, {}
    for norm in ("group", "layer"):
        folder = ut.build_random_hubert(p.work / f"hubert-{norm}", norm, **size)
        ex = UnitExtractor.load("hubert:" + folder, None, layer=layer, device=dev)
        ex = UnitExtractor(ex.encoder, _kmeans(ex, paths, k))
        if norm == "group":
            peer, peer_rate = _time_peer(p, folder, ex, paths, layer, audio_s)
        ex.encode([load_audio(paths[0])])  # warm-up
        workers = 0 if p.dry else 4
        ours, wall = timed(partial(our_units, ex, paths, workers), dev.type)
        how = ("group norm (the real shape): equal-length batches only" if norm == "group"
               else "layer-norm variant: padded batches")
        prec = "bf16" if p.gpu else "fp32"
        p.add(f"ours, {how}; {prec}, stop at layer {layer}, k-means on {dev.type}",
              {"x_realtime": audio_s / wall, "wall_s": wall,
               "vs_peer": (audio_s / wall) / peer_rate if peer_rate else None},
              same_units_as_peer=_agreement(ours, peer) if norm == "group" else None,
              decode_workers=workers)


def _time_peer(p: Part, folder: str, ex: UnitExtractor, paths: list[Path], layer: int,
               audio_s: float) -> tuple[dict[str, np.ndarray], float]:
    """Run and record the peer way on the same model and centroids as ``ex``."""
    from transformers import HubertModel

    full = HubertModel.from_pretrained(folder).eval().to(p.device)  # fp32, every layer
    run = partial(peer_units, full, centroids=ex.kmeans.centroids.cpu().numpy(),
                  n_frames=ex.encoder.n_frames, layer=layer, dev=p.device)
    run(paths[:1])  # warm-up
    units, wall = timed(partial(run, paths), p.device.type)
    p.add("peer way: fp32, batch 8 padded, all hidden states, k-means on CPU",
          {"x_realtime": audio_s / wall, "wall_s": wall})
    return units, audio_s / wall
