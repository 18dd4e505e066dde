"""Helpers for eval tests: real WAV files and ZeroSpeech 2021 gold.csv files."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import soundfile as sf

SR = 16_000


def write_wav(path: Path, seed: int, seconds: float = 0.4) -> Path:
    """A short sine (frequency from ``seed``) plus a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    x = 0.3 * np.sin(2 * np.pi * (150 + 40 * (seed % 17)) * t) + 0.05 * rng.standard_normal(len(t))
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, x.astype(np.float32), SR)
    return path


def write_gold(path: Path, header: list[str], rows: list[dict]) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=header)
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k, "") for k in header})
    return path


LEX_HEADER = ["id", "filename", "voice", "frequency", "word", "phones", "length", "correct"]
SYN_HEADER = ["filename", "type", "subtype", "id", "voice", "correct", "transcription"]
