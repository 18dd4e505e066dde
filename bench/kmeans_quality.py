"""k-means quality: our ``fit_kmeans`` vs scikit-learn ``KMeans`` and ``MiniBatchKMeans``.

Same data, same seeds, one process, side by side. Inertia (sum of squared distances to the
nearest centre) is computed the same way (float64 sums) for every method on the full data.
Datasets:

- ``clustered 60k x 32, k=200`` and ``clustered 200k x 32, k=500``: Gaussian blobs (as many
  as k, Dirichlet-weighted sizes, per-blob scale 0.5-1.5, centres ~ N(0, 4^2));
- ``mel frames 100k x 80, k=500``: our 25 Hz log-mel encoder on synthetic speech-like audio
  (voiced segments with formant envelopes, fricative noise, pauses).

    python bench/kmeans_quality.py             # 3 seeds, one thread each, a few minutes
    python bench/kmeans_quality.py --seeds 1 --quick

Prints a markdown table: median inertia over seeds per method, ratios to sklearn KMeans
(median, and the worst seed for ours), and median seconds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from slamlm.units.encoders import MelEncoder  # noqa: E402
from slamlm.units.kmeans import fit_kmeans  # noqa: E402
from slamlm.units.lloyd import inertia  # noqa: E402


def clustered(n: int, d: int, k: int, seed: int = 0) -> np.ndarray:
    """``n`` points in ``d`` dims from ``k`` Gaussian blobs of unequal size and spread."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((k, d)) * 4.0
    lab = rng.choice(k, n, p=rng.dirichlet(np.full(k, 2.0)))
    scale = rng.uniform(0.5, 1.5, k)[lab, None]
    return (centres[lab] + rng.standard_normal((n, d)) * scale).astype(np.float32)


def speechlike(seconds: float, seed: int = 0, sr: int = 16_000) -> np.ndarray:
    """Concatenated 40-300 ms segments: voiced (harmonics x formants), noise, or pause."""
    rng = np.random.default_rng(seed)
    out, total = [], 0
    while total < seconds * sr:
        n = int(rng.uniform(0.04, 0.3) * sr)
        t = np.arange(n) / sr
        kind = rng.choice(3, p=[0.6, 0.25, 0.15])
        if kind == 0:  # voiced: harmonic series shaped by three formants
            f0 = rng.uniform(80, 260) * (1 + 0.05 * np.sin(2 * np.pi * rng.uniform(2, 6) * t))
            phase = 2 * np.pi * np.cumsum(f0) / sr
            formants = rng.uniform([250, 800, 2000], [900, 2300, 3500])
            seg = np.zeros(n)
            for h in range(1, int(4000 / f0.mean())):
                fh = h * f0.mean()
                gain = sum(np.exp(-((fh - f) / 120.0) ** 2) for f in formants) + 0.02
                seg += gain * np.sin(h * phase) / h
        elif kind == 1:  # fricative: band-limited noise
            spec = np.fft.rfft(rng.standard_normal(n))
            f = np.fft.rfftfreq(n, 1 / sr)
            lo = rng.uniform(1500, 5000)
            spec *= (f > lo) & (f < lo + rng.uniform(1000, 3000))
            seg = np.fft.irfft(spec, n) * 3
        else:  # pause
            seg = 0.01 * rng.standard_normal(n)
        out.append(seg * rng.uniform(0.2, 1.0))
        total += n
    x = np.concatenate(out)
    return (0.3 * x / (np.abs(x).max() + 1e-9) + 0.003 * rng.standard_normal(len(x))).astype(np.float32)


def mel_frames(n_frames: int, seed: int = 0) -> np.ndarray:
    """About ``n_frames`` 80-band log-mel frames (25 Hz) of speech-like audio, 20 s per clip."""
    enc = MelEncoder()
    clips = [speechlike(20.0, seed * 10_000 + i) for i in range(n_frames // 500 + 1)]
    feats = torch.cat([enc.features([c])[0] for c in clips])
    return feats[:n_frames].numpy()


def run_ours(x: np.ndarray, k: int, seed: int) -> np.ndarray:
    return fit_kmeans(torch.from_numpy(x), k=k, seed=seed).centroids.numpy()


def run_sk(x: np.ndarray, k: int, seed: int) -> np.ndarray:
    from sklearn.cluster import KMeans

    return KMeans(n_clusters=k, random_state=seed).fit(x).cluster_centers_


def run_mb(x: np.ndarray, k: int, seed: int) -> np.ndarray:
    from sklearn.cluster import MiniBatchKMeans

    return MiniBatchKMeans(n_clusters=k, random_state=seed).fit(x).cluster_centers_


METHODS: dict[str, Callable[[np.ndarray, int, int], np.ndarray]] = {
    "ours": run_ours, "sk": run_sk, "mb": run_mb}


def measure(x: np.ndarray, k: int, seeds: list[int]) -> dict[str, dict[str, list[float]]]:
    """Inertia and seconds per method and seed."""
    xt = torch.from_numpy(x)
    res: dict[str, dict[str, list[float]]] = {m: {"inertia": [], "seconds": []} for m in METHODS}
    for seed in seeds:
        for name, fn in METHODS.items():
            t0 = time.perf_counter()
            c = fn(x, k, seed)
            res[name]["seconds"].append(time.perf_counter() - t0)
            res[name]["inertia"].append(inertia(xt, torch.as_tensor(c, dtype=torch.float32)))
    return res


def row(name: str, res: dict[str, dict[str, list[float]]]) -> str:
    med = {m: statistics.median(r["inertia"]) for m, r in res.items()}
    sec = {m: statistics.median(r["seconds"]) for m, r in res.items()}
    worst = max(o / s for o, s in zip(res["ours"]["inertia"], res["sk"]["inertia"]))
    return (f"| {name} | {med['ours']:.5g} | {med['sk']:.5g} | {med['mb']:.5g} | "
            f"{med['ours'] / med['sk']:.3f} | {worst:.3f} | {med['mb'] / med['sk']:.3f} | "
            f"{sec['ours']:.1f} | {sec['sk']:.1f} | {sec['mb']:.1f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1,
                    help="threads for torch and sklearn alike (2+ on a shared, loaded CPU is slow)")
    ap.add_argument("--quick", action="store_true", help="smaller data (a smoke check)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from threadpoolctl import threadpool_limits

    scale = 10 if args.quick else 1
    sets = [(f"clustered {60 // scale}k x 32, k=200", lambda: clustered(60_000 // scale, 32, 200), 200),
            (f"clustered {200 // scale}k x 32, k=500", lambda: clustered(200_000 // scale, 32, 500), 500),
            (f"mel frames {100 // scale}k x 80, k=500", lambda: mel_frames(100_000 // scale), 500)]
    seeds = list(range(args.seeds))
    print(f"seeds {seeds}, {args.threads} threads; inertia = median over seeds; "
          f"worst = max over seeds of ours/sk (same seed)\n")
    print("| dataset | ours | sk KMeans | sk MiniBatch | ours/sk | ours/sk worst | mb/sk "
          "| ours s | sk s | mb s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    with threadpool_limits(args.threads):
        for name, make, k in sets:
            print(row(name, measure(make(), k, seeds)), flush=True)


if __name__ == "__main__":
    main()
