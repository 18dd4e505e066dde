"""Unit quality against the words spoken: which offline encoder gives units a small LM can learn?

The demo's stories come from espeak-ng with known word timings (``words`` in the synth
manifest). For each encoder, fit k-means on some stories, cut every other story's 25 Hz
unit sequence at the word boundaries and dedup repeats inside each word, then measure:

- ``exact``: how often two tokens of the same word, same voice, give identical unit strings;
- ``ABX same voice``: word ABX error with A, B, X in one voice: X and A are the same word,
  B another word, the error is ``d(A, X) > d(B, X)`` (ties count half), ``d`` = normalised
  edit distance. 0 = units tell words apart perfectly, 0.5 = chance;
- ``ABX cross voice``: the same with A spoken by another voice than X (and B by X's voice):
  how speaker-independent the units are, which decides how much of the corpus a model can
  share between voices. Also per voice pair.

Encoders: ``mel`` (ours, the demo's: 80 log-mel bands, per-utterance normalised), MFCC
(13 cepstra + deltas, per-utterance mean/variance normalised, 4 x 10 ms frames stacked to
25 Hz), and pocketsphinx's en-us acoustic model in allphone mode (one phone label per frame:
the ASR phone recogniser the pocketsphinx wheel ships, units = its phones).

    slam synth stories --n 300 --voices en-us --voices en-us+f3 --voices en --out /tmp/st
    python bench/unit_quality.py /tmp/st/manifest.jsonl        # a few minutes on 2 cores
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from slamlm.units.encoders import MelEncoder, mel_filterbank  # noqa: E402
from slamlm.units.kmeans import nearest  # noqa: E402
from slamlm.units.lloyd import fit_centroids  # noqa: E402

FPS = 25


class Mfcc:
    """13 MFCC (+ deltas, delta-deltas) at 10 ms, per-utterance CMVN, 4 frames stacked -> 25 Hz."""

    def __init__(self, n_ceps: int = 13, n_mels: int = 40):
        self.fb = mel_filterbank(n_mels, 512, 16000)
        self.win = torch.hann_window(400)
        k = torch.arange(n_mels).float()
        self.dct = torch.cos(torch.pi / n_mels * (k[None] + 0.5)
                             * torch.arange(n_ceps).float()[:, None]) * (2 / n_mels) ** 0.5

    @staticmethod
    def _delta(c: torch.Tensor) -> torch.Tensor:
        p = torch.nn.functional.pad(c.T[None], (2, 2), mode="replicate")[0].T
        return (2 * (p[4:] - p[:-4]) + (p[3:-1] - p[1:-3])) / 10

    def features(self, wavs: list[np.ndarray]) -> list[torch.Tensor]:
        out = []
        for w in wavs:
            x = torch.as_tensor(w, dtype=torch.float32)
            n25 = len(x) // 640
            fr = torch.nn.functional.pad(x, (120, 520)).unfold(0, 400, 160)[: 4 * n25]
            c = torch.log(torch.fft.rfft(fr * self.win, n=512).abs().pow(2) @ self.fb.T + 1e-6) @ self.dct.T
            c = (c - c.mean(0)) / (c.std(0) + 1e-5)
            d = self._delta(c)
            f = torch.cat([c, d, self._delta(d)], 1)
            out.append(f.reshape(n25, -1))
        return out


class Allphone:
    """pocketsphinx en-us acoustic model, allphone decoding: one phone label per 25 Hz frame."""

    def __init__(self):
        from pocketsphinx import Decoder, get_model_path

        mp = get_model_path()
        self.d = Decoder(hmm=f"{mp}/en-us/en-us", allphone=f"{mp}/en-us/en-us-phone.lm.bin",
                         lw=2.0, beam=1e-10, pbeam=1e-10, loglevel="FATAL")
        self.ids: dict[str, int] = {}

    def labels(self, wavs: list[np.ndarray]) -> list[torch.Tensor]:
        out = []
        for w in wavs:
            pcm = (np.clip(w, -1, 1) * 32767).astype(np.int16)
            self.d.start_utt()
            self.d.process_raw(pcm.tobytes(), full_utt=True)
            self.d.end_utt()
            lab = np.zeros(len(w) // 640, np.int64)
            for s in self.d.seg():  # 100 Hz frames -> 25 Hz
                lab[s.start_frame // 4:(s.end_frame + 1) // 4 + 1] = self.ids.setdefault(s.word, len(self.ids))
            out.append(torch.from_numpy(lab))
        return out


def word_units(units: np.ndarray, words: list) -> list[tuple[str, tuple[int, ...]]]:
    """(normalised word, deduped units inside its span) for every timed word."""
    res = []
    for w, s, e in words:
        seg = units[int(round(s * FPS)):int(round(e * FPS))]
        d = tuple(int(u) for i, u in enumerate(seg) if i == 0 or u != seg[i - 1])
        if d:
            res.append((w.lower().strip('.,!?";:'), d))
    return res


def edit_distance(a: tuple, b: tuple) -> float:
    """Levenshtein distance / the longer length."""
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1] / max(len(a), len(b), 1)


def score(tokens: list[tuple[str, str, tuple]], trials: int, seed: int = 1) -> dict:
    """exact-match rate and ABX errors (same voice, cross voice, per voice pair)."""
    by_word: dict[str, list] = defaultdict(list)
    for w, v, d in tokens:
        by_word[w].append((v, d))
    words = [w for w, occ in by_word.items() if len(occ) >= 2 and len(w) >= 3]
    rng = random.Random(seed)
    exact, errs = [], defaultdict(list)
    for _ in range(trials):
        w = rng.choice(words)
        (va, a), (vx, x) = rng.sample(by_word[w], 2)
        if va == vx:
            exact.append(a == x)
        other = rng.choice([q for q in words if q != w])
        cands = [d for v, d in by_word[other] if v == vx]
        if not cands:
            continue
        da, db = edit_distance(a, x), edit_distance(rng.choice(cands), x)
        e = 1.0 if da > db else 0.5 if da == db else 0.0
        errs["same" if va == vx else "cross"].append(e)
        errs[" / ".join(sorted({va, vx}))].append(e)
    return {"exact": float(np.mean(exact)), **{k: float(np.mean(v)) for k, v in errs.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("manifest", help="a slam synth stories manifest.jsonl (rows with 'words')")
    ap.add_argument("--fit", type=int, default=80, help="stories to fit k-means on")
    ap.add_argument("--eval", type=int, default=120, help="stories to measure on")
    ap.add_argument("--k", type=int, default=100)
    ap.add_argument("--trials", type=int, default=4000)
    ap.add_argument("--encoders", default="mel,mfcc,allphone")
    a = ap.parse_args()
    torch.set_num_threads(1)
    root = Path(a.manifest).parent
    recs = [json.loads(line) for line in open(a.manifest)]
    random.Random(0).shuffle(recs)
    recs = recs[: a.fit + a.eval]
    wavs = [sf.read(root / r["path"], dtype="float32")[0] for r in recs]
    makers = {"mel": MelEncoder, "mfcc": Mfcc, "allphone": Allphone}
    rows = []
    for name in a.encoders.split(","):
        t = time.time()
        enc = makers[name]()
        if isinstance(enc, Allphone):
            units = enc.labels(wavs[a.fit:])
        else:
            feats = enc.features(wavs)
            c = fit_centroids(torch.cat(feats[: a.fit]), a.k, seed=0, max_iter=50)[0]
            units = [nearest(f, c) for f in feats[a.fit:]]
        toks = [(w, r["voice"], d) for u, r in zip(units, recs[a.fit:])
                for w, d in word_units(u.numpy(), r["words"])]
        rows.append((name, score(toks, a.trials), time.time() - t))
    pairs = sorted({k for _, s, _ in rows for k in s if "/" in k})
    print(f"{len(recs) - a.fit} stories measured, k={a.k} (allphone: its phone set)\n")
    print("| encoder | exact same word | ABX same voice | ABX cross voice | "
          + " | ".join(pairs) + " | s |")
    print("|---" * (5 + len(pairs)) + "|")
    for name, s, secs in rows:
        label = f"{name} (ours)" if name == "mel" else name
        print(f"| {label} | {s['exact']:.3f} | {s.get('same', float('nan')):.3f} | "
              f"{s.get('cross', float('nan')):.3f} | "
              + " | ".join(f"{s.get(p, float('nan')):.2f}" for p in pairs) + f" | {secs:.0f} |")


if __name__ == "__main__":
    main()
