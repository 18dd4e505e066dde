"""pocketsphinx full vs fast decoding on a demo's clips: time and agreement, side by side.

The demo transcribes its prompts and generations for the report (reference text beside ASR
text, Auto-BLEU). The full decoder (fwdflat + bestpath rescoring) costs most of that step;
``PocketSphinxASR(fast=True)`` skips both passes; ``workers=2`` decodes two clips at once
(the decoder is single-threaded). This prints seconds per configuration on
the same clips, the speed ratio, and the word error rate of each against the clips' reference
text where the run has one (the synthetic stories' text), so the choice is measured.

Usage (after ``slam demo --out RUN``):

    python bench/asr_speed.py --run RUN [--clips 24]

Example:
    >>> wer("a b c", "a x c")
    0.3333333333333333
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def wer(ref: str, hyp: str) -> float:
    """Word error rate of ``hyp`` against ``ref`` (edit distance / reference words)."""
    r, h = ref.split(), hyp.split()
    d = list(range(len(h) + 1))
    for i, rw in enumerate(r, 1):
        prev, d[0] = d[0], i
        for j, hw in enumerate(h, 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (rw != hw))
    return d[len(h)] / max(len(r), 1)


def main() -> None:
    from slamlm.audio import load_audio
    from slamlm.eval.asr import PocketSphinxASR, normalize_text
    from slamlm.io import read_jsonl

    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, default=Path("demo_run"))
    ap.add_argument("--clips", type=int, default=24, help="held-out story clips to decode")
    args = ap.parse_args()
    manifest = args.run / "synth/stories/manifest.jsonl"
    recs = list(read_jsonl(manifest))[-args.clips:]
    wavs = [load_audio(manifest.parent / r["path"]) for r in recs]
    refs = [normalize_text(r["text"]) for r in recs]
    seconds = sum(len(w) for w in wavs) / 16000
    rows = []
    for fast, workers, max_hmm in ((False, 1, 0), (True, 1, 0), (True, 1, 3000), (True, 2, 3000)):
        asr = PocketSphinxASR(fast=fast, workers=workers, max_hmm=max_hmm)
        t0 = time.perf_counter()
        hyps = asr.transcribe(wavs)
        dt = time.perf_counter() - t0
        err = sum(wer(r, h) * len(r.split()) for r, h in zip(refs, hyps)) / sum(
            len(r.split()) for r in refs)
        rows.append((f"{asr.name}, {workers} process{'es' if workers > 1 else ''}", dt, err))
    print(f"{len(wavs)} clips, {seconds:.0f} s of audio")
    print("| decoder | seconds | x real time | WER vs story text |")
    print("|---|---|---|---|")
    for name, dt, err in rows:
        print(f"| {name} | {dt:.1f} | {dt / seconds:.3f} | {100 * err:.1f}% |")
    print(f"fast / full speed-up: {rows[0][1] / rows[1][1]:.2f}x; max 3000 HMMs / fast: "
          f"{rows[1][1] / rows[2][1]:.2f}x; 2 processes / 1: {rows[2][1] / rows[3][1]:.2f}x")
    print(json.dumps({"clips": len(wavs), "audio_s": round(seconds, 1),
                      "rows": [{"asr": n, "seconds": round(t, 2), "wer": round(e, 4)}
                               for n, t, e in rows]}))


if __name__ == "__main__":
    main()
