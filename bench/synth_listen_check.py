"""Listen-check of the synthetic voices: transcribe clips with offline pocketsphinx, WER per voice.

For each voice, ``--clips`` short stories (first ``--sentences`` sentences of training-stream
stories) are spoken by our espeak-ng backend and decoded by pocketsphinx's default English
model (16 kHz). WER is against the text we spoke; the "mismatched" column scores the same
transcripts against another clip's text (a chance-level control: intelligible speech gives
WER far below it). pocketsphinx is a weak small-vocabulary-ish recogniser, so absolute WER is
high even for clean speech; compare voices with each other.

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
    noise = np.random.default_rng(0).normal(0.0, dither, len(wav)).astype(np.float32)
    pcm = (np.clip(wav + noise, -1, 1) * 32767).astype(np.int16).tobytes()
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)
    decoder.end_utt()
    hyp = decoder.hyp()
    return hyp.hypstr if hyp is not None else ""


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
    tts = get_backend("espeak")
    voices = args.voices.split(",") if args.voices else list(DEFAULT_VOICES)
    texts = [" ".join(split_sentences(story_text(10_000 + i, 0))[: args.sentences])
             for i in range(args.clips)]
    print("| voice | clips | audio (s) | WER | WER mismatched (control) | decode x real time |")
    print("|---|---|---|---|---|---|")
    for v in voices:
        hyps, audio, t_dec = [], 0.0, 0.0
        for text in texts:
            wav, sr, _ = tts.synthesize(text, Voice(v))
            audio += len(wav) / sr
            t0 = time.perf_counter()
            hyps.append(transcribe(decoder, wav))
            t_dec += time.perf_counter() - t0
        control = wer(texts[1:] + texts[:1], hyps)
        print(f"| {v} | {len(texts)} | {audio:.0f} | {100 * wer(texts, hyps):.1f}% | "
              f"{100 * control:.1f}% | {audio / t_dec:.1f} |", flush=True)
    print(f"\nexample: {texts[0]!r}\n  -> {hyps[0]!r}")


if __name__ == "__main__":
    main()
