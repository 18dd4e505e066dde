"""Word-boundary error of ``slam align-words`` (pocketsphinx forced alignment) against the
synthetic corpus's known word timings (espeak-ng word events, ``synth/tts.py``), beside two
content-blind baselines that know only the transcript and the audio length:

- ``uniform chars (whole file)``: the utterance split in proportion to each word's letters,
- ``uniform chars (voiced span)``: the same over first..last non-silent sample (what the
  flite backend does: ``synth.tts.align_words(text, [], wav, sr)``).

Utterances are short sentences of the synthetic stories, spoken by several espeak-ng voices
(round robin). Errors are |predicted - reference| per word boundary in ms; the table gives the
median and 90th percentile of start and end boundaries over the words of the utterances that
pocketsphinx aligned (baselines on the same words), plus failures and speed.

    python bench/align_words_error.py --n 100 --voices en-us,en-us+f3,en
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def uniform_chars(words: list[str], t0: float, t1: float) -> list[list]:
    """[[word, start, end]] splitting [t0, t1] in proportion to letters."""
    lens = np.array([max(len(w), 1) for w in words], dtype=float)
    edges = t0 + (t1 - t0) * np.concatenate([[0.0], np.cumsum(lens) / lens.sum()])
    return [[w, float(a), float(b)] for w, a, b in zip(words, edges[:-1], edges[1:])]


def sentences(n: int, min_words: int = 4, max_words: int = 16) -> list[str]:
    from slamlm.synth.stories import split_sentences, story_text
    from slamlm.words.forced import transcript_words

    out: list[str] = []
    i = 0
    while len(out) < n:
        for s in split_sentences(story_text(i)):
            if min_words <= len(transcript_words(s)) <= max_words and len(out) < n:
                out.append(s)
        i += 1
    return out


def _row(name: str, st: list[float], en: list[float]) -> str:
    p = np.percentile
    return (f"| {name} | {np.median(st):.0f} | {p(st, 90):.0f} | {np.median(en):.0f} | "
            f"{p(en, 90):.0f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=100, help="utterances")
    ap.add_argument("--voices", default="en-us,en-us+f3,en", help="espeak-ng voices, round robin")
    args = ap.parse_args()

    from slamlm.synth.tts import Voice, align_words, get_backend
    from slamlm.words.forced import AlignError, ForcedAligner

    tts = get_backend("espeak")
    aligner = ForcedAligner()
    voices = args.voices.split(",")
    errs: dict[str, dict[str, list[float]]] = {}
    per_voice: dict[str, dict[str, list[float]]] = {v: {"start": [], "end": []} for v in voices}
    failed: list[str] = []
    audio_s = align_s = 0.0
    n_words = 0
    for i, text in enumerate(sentences(args.n)):
        voice = voices[i % len(voices)]
        wav, sr, ref = tts.synthesize(text, Voice(voice))
        audio_s += len(wav) / sr
        t = time.perf_counter()
        try:
            ours = aligner.align(wav, text).words
        except AlignError as e:
            failed.append(f"{voice}: {text!r}: {e}")
            continue
        finally:
            align_s += time.perf_counter() - t
        words = [w[0] for w in ref]
        assert [w[0] for w in ours] == words
        base = align_words(text, [], wav, sr)
        preds = {"pocketsphinx forced alignment (ours)": ours,
                 "uniform chars (whole file)": uniform_chars(words, 0.0, len(wav) / sr),
                 "uniform chars (voiced span)": base}
        for name, pred in preds.items():
            e = errs.setdefault(name, {"start": [], "end": []})
            e["start"] += [1000 * abs(p[1] - r[1]) for p, r in zip(pred, ref)]
            e["end"] += [1000 * abs(p[2] - r[2]) for p, r in zip(pred, ref)]
        per_voice[voice]["start"] += [1000 * abs(p[1] - r[1]) for p, r in zip(ours, ref)]
        per_voice[voice]["end"] += [1000 * abs(p[2] - r[2]) for p, r in zip(ours, ref)]
        n_words += len(ref)
    print(f"{args.n} utterances ({audio_s:.0f} s of audio, voices {', '.join(voices)}), "
          f"{args.n - len(failed)} aligned, {n_words} words; pocketsphinx "
          f"{audio_s / max(align_s, 1e-9):.0f}x real time on one core\n")
    print("| word boundaries vs espeak-ng timings, ms | start median | start p90 | end median | "
          "end p90 |")
    print("|---|---|---|---|---|")
    for name, e in errs.items():
        print(_row(name, e["start"], e["end"]))
    for v, e in per_voice.items():
        if e["start"]:
            print(_row(f"ours, voice {v}", e["start"], e["end"]))
    for f in failed:
        print("failed:", f)


if __name__ == "__main__":
    main()
