"""Helpers of the container tests: speech-like clips, their FLAC bytes, a units run."""

from __future__ import annotations

import io

import numpy as np
import soundfile as sf

from slamlm.units.runner import UnitsConfig, read_units, run_units


def clip(seconds: float, seed: int, sr: int = 16000) -> np.ndarray:
    """A voiced-sounding clip: a gliding tone plus a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    x = 0.2 * np.sin(2 * np.pi * (140 + 60 * seed + 90 * np.sin(3 * t)) * t)
    return (x + 0.02 * rng.standard_normal(t.size)).astype(np.float32)


def flac_bytes(x: np.ndarray, sr: int = 16000, fmt: str = "FLAC") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x, sr, format=fmt, subtype="PCM_16")
    return buf.getvalue()


CLIPS = {"utt-a": clip(0.8, 0), "utt-b": clip(1.3, 1), "utt-c": clip(0.6, 2)}
TEXTS = {"utt-a": "the cat sat", "utt-b": "a dog ran far away", "utt-c": "hello there"}


def extract(src, out, kmeans, **kw) -> dict[str, dict]:
    """``slam units extract`` of ``src`` in-process; records by id."""
    kw = {"num_workers": 0, "device": "cpu", **kw}
    run_units(UnitsConfig(input=str(src), out=str(out), kmeans=str(kmeans), **kw))
    return {r["id"]: r for r in read_units(out)}


def same_units(got: dict, want: dict, key=lambda rid: rid) -> None:
    """Every record's units equal the plain-file extraction of the same clip."""
    for rid, r in got.items():
        w = want[key(rid)]
        assert (r["units"], r["durations"], r["n_frames"]) == (w["units"], w["durations"],
                                                                w["n_frames"]), rid
