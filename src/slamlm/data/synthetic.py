"""Synthetic unit documents with learnable structure (for smoke runs, tests and benches).

Each document is a random walk over units: the next unit is the previous one plus a small
step drawn from a fixed distribution (mod k), with occasional jumps. A model can learn it, so
a falling validation loss is a real signal; log-normal lengths mimic utterance lengths.

Example:
    >>> recs = synthetic_records(3, k=50, mean_len=20, seed=0)
    >>> len(recs), recs[0]["id"], max(max(r["units"]) for r in recs) < 50
    (3, 'syn/000000', True)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from slamlm.io import write_jsonl


def random_walk(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` units in ``[0, k)``: steps of -2..+3 (biased up), 5% uniform jumps."""
    steps = rng.choice([-2, -1, 1, 2, 3], p=[0.1, 0.2, 0.4, 0.2, 0.1], size=n)
    x = (rng.integers(k) + np.cumsum(steps)) % k
    jumps = rng.random(n) < 0.05
    x[jumps] = rng.integers(0, k, int(jumps.sum()))
    return x


def synthetic_records(n_docs: int, k: int = 500, mean_len: float = 600, sigma: float = 0.5,
                      seed: int = 0) -> list[dict]:
    """``n_docs`` units records with log-normal lengths around ``mean_len``."""
    rng = np.random.default_rng(seed)
    lens = np.maximum(2, rng.lognormal(np.log(mean_len), sigma, n_docs).astype(int))
    return [{"id": f"syn/{i:06d}", "units": random_walk(int(n), k, rng).tolist(),
             "durations": [1] * int(n)} for i, n in enumerate(lens)]


def write_synthetic_units(folder: str | Path, n_docs: int, k: int = 500, mean_len: float = 600,
                          seed: int = 0, per_file: int = 1000) -> Path:
    """Write synthetic records as ``folder/part_XXX.jsonl`` files; returns ``folder``."""
    folder = Path(folder)
    recs = synthetic_records(n_docs, k, mean_len, seed=seed)
    for i in range(0, len(recs), per_file):
        write_jsonl(folder / f"part_{i // per_file:03d}.jsonl", recs[i:i + per_file])
    return folder
