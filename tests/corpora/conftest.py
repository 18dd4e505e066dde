"""Shared for the container tests: speech-like clips, one small k-means, and a units run."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
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


@pytest.fixture(scope="session")
def kmeans8(tmp_path_factory) -> Path:
    """A k=8 mel k-means fit on the clips (shared by every container test)."""
    from slamlm.units.fit import FitConfig, run_fit_kmeans

    d = tmp_path_factory.mktemp("fit")
    for k, x in CLIPS.items():
        sf.write(d / f"{k}.flac", x, 16000, subtype="PCM_16")
    return run_fit_kmeans(FitConfig(input=str(d), out=str(d / "km.safetensors"), k=8,
                                    device="cpu", n_init=1))


@pytest.fixture(scope="session")
def plain_units(tmp_path_factory, kmeans8) -> dict[str, dict]:
    """Units of the clips extracted from plain FLAC files: what every container must match."""
    d = tmp_path_factory.mktemp("plain")
    for k, x in CLIPS.items():
        sf.write(d / f"{k}.flac", x, 16000, subtype="PCM_16")
    return extract(d, tmp_path_factory.mktemp("plain_out"), kmeans8)


def extract(src, out, kmeans, **kw) -> dict[str, dict]:
    """``slam units extract`` of ``src`` in-process; records by id."""
    run_units(UnitsConfig(input=str(src), out=str(out), kmeans=str(kmeans), num_workers=0,
                          device="cpu", **kw))
    return {r["id"]: r for r in read_units(out)}


def same_units(got: dict, want: dict, key=lambda rid: rid) -> None:
    """Every record's units equal the plain-file extraction of the same clip."""
    for rid, r in got.items():
        w = want[key(rid)]
        assert (r["units"], r["durations"], r["n_frames"]) == (w["units"], w["durations"],
                                                                w["n_frames"]), rid
