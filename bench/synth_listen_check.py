"""Listen-check of the synthetic voices: transcribe clips with offline pocketsphinx, WER per voice.

For each voice, ``--clips`` short stories (first ``--sentences`` sentences of training-stream
stories) are spoken by our espeak-ng backend and decoded by pocketsphinx's default English
model (16 kHz). WER is against the text we spoke; the "mismatched" column scores the same
transcripts against another clip's text (a chance-level control: intelligible speech gives
WER far below it). pocketsphinx is a weak small-vocabulary-ish recogniser, so absolute WER is
high even for clean speech; compare voices with each other. Word timings are checked against
pocketsphinx forced alignment (start error per word), beside the letter-proportional estimate
a backend without word events would give.

    python bench/synth_listen_check.py --clips 10
"""

from __future__ import annotations

import argparse
import re
import time

import numpy as np


def words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    d = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, d[0] = d[0], i
        for j, h in enumerate(hyp, 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (r != h))
    return d[-1]


def wer(refs: list[str], hyps: list[str]) -> float:
    errs = sum(edit_distance(words(r), words(h)) for r, h in zip(refs, hyps))
    return errs / max(1, sum(len(words(r)) for r in refs))


def transcribe(decoder, wav: np.ndarray, dither: float = 0.003) -> str:
    """Decode one clip. espeak-ng pads with exact digital silence, which breaks pocketsphinx's
    cepstral mean normalisation (log of zero energy); a ~-50 dB dither fixes that."""
    decoder.start_utt()
    decoder.process_raw(_pcm(wav, dither), full_utt=True)
    decoder.end_utt()
    hyp = decoder.hyp()
    return hyp.hypstr if hyp is not None else ""


def _pcm(wav: np.ndarray, dither: float = 0.003) -> bytes:
    noise = np.random.default_rng(0).normal(0.0, dither, len(wav)).astype(np.float32)
    return (np.clip(wav + noise, -1, 1) * 32767).astype(np.int16).tobytes()


def forced_starts(decoder, wav: np.ndarray, text: str) -> list[float] | None:
    """Word start times (s) from pocketsphinx forced alignment; None if it cannot align."""
    ref = words(text)
    try:
        decoder.set_align_text(" ".join(ref))
    except RuntimeError:  # a word missing from CMUdict
        return None
    decoder.start_utt()
    decoder.process_raw(_pcm(wav), full_utt=True)
    decoder.end_utt()
    segs = [(s.word.split("(")[0], s.start_frame / 100) for s in decoder.seg()]
    segs = [(w, t) for w, t in segs if not w.startswith(("<", "["))]
    if [w for w, _ in segs] != ref:
        return None
    return [t for _, t in segs]


def timing_errors(aligner, wav, sr, text, ours) -> tuple[list[float], list[float]]:
    """|start - forced-alignment start| per word (ms) for ours and the letter-proportional
    estimate (what a backend without word events can do)."""
    from slamlm.synth.tts import align_words

    ref = forced_starts(aligner, wav, text)
    base = align_words(text, [], wav, sr)
    if ref is None or len(ref) != len(ours):
        return [], []
    e_ours = [1000 * abs(w[1] - t) for w, t in zip(ours, ref)]
    e_base = [1000 * abs(w[1] - t) for w, t in zip(base, ref)]
    return e_ours, e_base


def _median(x: list[float]) -> str:
    return f"{np.median(x):.0f} (n={len(x)})" if x else "n/a"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--clips", type=int, default=10)
    ap.add_argument("--sentences", type=int, default=1)
    ap.add_argument("--voices", default=None, help="comma-separated (default: DEFAULT_VOICES)")
    args = ap.parse_args()
    import pocketsphinx

    from slamlm.synth.stories import split_sentences, story_text
    from slamlm.synth.tts import DEFAULT_VOICES, Voice, get_backend

    pocketsphinx.set_loglevel("FATAL")
    decoder = pocketsphinx.Decoder(samprate=16000, logfn="/dev/null")
    aligner = pocketsphinx.Decoder(samprate=16000, logfn="/dev/null")
    tts = get_backend("espeak")
    voices = args.voices.split(",") if args.voices else list(DEFAULT_VOICES)
    texts = [" ".join(split_sentences(story_text(10_000 + i, 0))[: args.sentences])
             for i in range(args.clips)]
    print("| voice | clips | audio (s) | WER | WER mismatched (control) | decode x real time "
          "| word-start error vs forced alignment, median ms: ours | letter-proportional |")
    print("|---|---|---|---|---|---|---|---|")
    for v in voices:
        hyps, audio, t_dec, e_ours, e_base = [], 0.0, 0.0, [], []
        for text in texts:
            wav, sr, ours = tts.synthesize(text, Voice(v))
            audio += len(wav) / sr
            a, b = timing_errors(aligner, wav, sr, text, ours)
            e_ours += a
            e_base += b
            t0 = time.perf_counter()
            hyps.append(transcribe(decoder, wav))
            t_dec += time.perf_counter() - t0
        control = wer(texts[1:] + texts[:1], hyps)
        print(f"| {v} | {len(texts)} | {audio:.0f} | {100 * wer(texts, hyps):.1f}% | "
              f"{100 * control:.1f}% | {audio / t_dec:.1f} | {_median(e_ours)} | "
              f"{_median(e_base)} |", flush=True)
    print(f"\nexample: {texts[0]!r}\n  -> {hyps[0]!r}")


if __name__ == "__main__":
    main()
