"""Forced alignment of (audio, transcript) with pocketsphinx 5 (its en-us acoustic model and
CMU dictionary ship in the wheel): word start/end times in seconds.

Words are the transcript's ``[A-Za-z0-9]+('|-...)`` tokens (as the synthetic corpus counts
them); each is looked up lower-cased in the CMU dictionary. A word it lacks gets a
pronunciation from espeak-ng (``oov="espeak"``, mapped to CMU phones), from its spelling
(``"letters"``), or fails the utterance (``"fail"``); every added word is reported.

Example:
    >>> # al = ForcedAligner()
    >>> # al.align(wav, "The cat sat.").words   # [['The', 0.12, 0.27], ['cat', ...], ...]
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field

import numpy as np

from slamlm.synth.tts import normalize_text, text_words
from slamlm.words.phones import espeak_to_cmu, letters_to_cmu

log = logging.getLogger(__name__)

OOV_MODES = ("espeak", "letters", "fail")
SAMPLE_RATE = 16000
_FILLERS = ("<", "[", "+")  # <s>, </s>, <sil>, [NOISE], ++BREATH++


class AlignError(ValueError):
    """An utterance that cannot be aligned; the message is the reason for failures.jsonl."""


@dataclass
class Alignment:
    """Words as ``[word, start_s, end_s]`` and the pronunciations added for unknown words
    (``{word: "PHONES (source)"}``)."""

    words: list[list]
    oov: dict[str, str] = field(default_factory=dict)
    uncovered: float = 0.0  # share of the speech-like 10 ms frames outside every word


def uncovered_speech(wav: np.ndarray, words: list[list], rel_db: float = -30.0) -> float:
    """Share of speech-like 10 ms frames (RMS within ``rel_db`` of the loud frames) that no
    word covers: near 0 for a matching transcript on clean speech, ~0.2 with breaths and
    noise of real recordings, high when the transcript misses much of what is said.

    Example:
        >>> x = np.r_[np.zeros(1600), np.ones(1600) * 0.1].astype(np.float32)
        >>> uncovered_speech(x, [["a", 0.1, 0.2]]), uncovered_speech(x, [["a", 0.0, 0.1]])
        (0.0, 1.0)
    """
    hop = SAMPLE_RATE // 100
    n = len(wav) // hop
    if n == 0:
        return 0.0
    e = np.sqrt(np.mean(np.square(wav[: n * hop].reshape(n, hop), dtype=np.float64), axis=1))
    voiced = e > max(float(np.percentile(e, 95)) * 10 ** (rel_db / 20), 1e-3)
    covered = np.zeros(n, bool)
    for _, s, t in words:
        covered[int(round(s * 100)):int(round(t * 100))] = True
    return round(float((voiced & ~covered).sum() / max(int(voiced.sum()), 1)), 3)


def transcript_words(text: str) -> list[str]:
    """The words of a transcript that get times (punctuation dropped, ASCII-folded).

    Example:
        >>> transcript_words("Don't stop -- it's 1984!")
        ["Don't", 'stop', "it's", '1984']
    """
    return [w for w, _, _ in text_words(normalize_text(text, ascii_fold=True))]


PAD_S = 0.25  # silence added before and after: the search must end in silence (a last word
#               cut at the end of the file is otherwise dropped)


def _pcm(wav: np.ndarray, dither: float) -> bytes:
    """16-bit PCM, padded with :data:`PAD_S` of silence at both ends, with a fixed ~-50 dB
    dither: exact digital silence (synthetic audio, padded files) breaks pocketsphinx's
    cepstral mean normalisation (log of zero energy)."""
    pad = np.zeros(int(PAD_S * SAMPLE_RATE), np.float32)
    x = np.concatenate([pad, wav.astype(np.float32, copy=False), pad])
    noise = np.random.default_rng(0).normal(0.0, dither, len(x)).astype(np.float32)
    return (np.clip(x + noise, -1, 1) * 32767).astype(np.int16).tobytes()


class ForcedAligner:
    """One pocketsphinx decoder in alignment mode (one per process: it is not thread-safe)."""

    def __init__(self, oov: str = "espeak", voice: str = "en-us", dither: float = 0.003,
                 min_rms: float = 1e-3, max_uncovered: float = 0.5):
        if oov not in OOV_MODES:
            raise ValueError(f"oov {oov!r}: choose one of {', '.join(OOV_MODES)}")
        try:
            import pocketsphinx
        except ImportError as e:  # pragma: no cover - depends on the install
            raise ImportError("forced alignment needs pocketsphinx: pip install "
                              "'slamlm[words]'") from e
        pocketsphinx.set_loglevel("FATAL")
        # bestpath=False: the lattice rescoring pass can drop a word of the forced sequence
        self.decoder = pocketsphinx.Decoder(samprate=SAMPLE_RATE, lm=None, bestpath=False,
                                            logfn=os.devnull)
        self.frate = int(self.decoder.config["frate"])
        self.oov, self.voice, self.dither, self.min_rms = oov, voice, dither, min_rms
        self.max_uncovered = max_uncovered
        self.added: dict[str, str] = {}  # word key -> "PHONES (source)", over this process
        self.identity = identity(oov)

    def _known(self, key: str) -> bool:
        return self.decoder.lookup_word(key) is not None

    def _pronounce(self, keys: list[str]) -> dict[str, str]:
        """Add pronunciations for ``keys`` missing from the dictionary; returns them."""
        new: dict[str, str] = {}
        todo = [k for k in dict.fromkeys(keys) if not self._known(k)]
        if not todo:
            return new
        if self.oov == "fail":
            raise AlignError(f"words not in the CMU dictionary: {', '.join(todo[:8])} "
                             f"(use --oov espeak or letters)")
        prons: dict[str, tuple[list[str], str]] = {}
        for k in todo:  # hyphenated words whose parts are all known: the parts' phones
            parts = [p for p in k.replace("-", " ").split() if p]
            if len(parts) > 1 and all(self._known(p) for p in parts):
                prons[k] = ([ph for p in parts for ph in self.decoder.lookup_word(p).split()],
                            "parts")
        rest = [k for k in todo if k not in prons]
        if rest and self.oov == "espeak":
            for k, (phones, unknown) in zip(rest, self._espeak(rest)):
                if phones:
                    note = f"espeak, dropped {' '.join(unknown)}" if unknown else "espeak"
                    prons[k] = (phones, note)
        for k in todo:
            if k not in prons:
                prons[k] = (letters_to_cmu(k), "letters")
            phones, source = prons[k]
            if not phones:
                raise AlignError(f"no pronunciation for {k!r}")
            self.decoder.add_word(k, " ".join(phones), update=True)
            new[k] = self.added[k] = f"{' '.join(phones)} ({source})"
        return new

    def _espeak(self, keys: list[str]) -> list[tuple[list[str], list[str]]]:
        """CMU phones for each key from espeak-ng (empty when espeak-ng is unavailable)."""
        try:
            from slamlm.synth.espeak import EspeakEngine, EspeakError

            eng = EspeakEngine.get()
            voice = self.voice
            res = eng.forked(lambda ks: [eng._phonemes_here(k, voice) for k in ks], keys)
        except (ImportError, OSError, EspeakError) as e:
            log.warning("espeak-ng gave no pronunciations (%s); spelling-based ones are used", e)
            return [([], [])] * len(keys)
        return [espeak_to_cmu(p) for p in res]

    def align(self, wav: np.ndarray, text: str) -> Alignment:
        """Word times of ``text`` in ``wav`` (mono float32, 16 kHz); :class:`AlignError`
        when it cannot be aligned."""
        words = transcript_words(text)
        if not words:
            raise AlignError("transcript has no words")
        dur = len(wav) / SAMPLE_RATE
        if dur < 0.05 * len(words):
            raise AlignError(f"audio too short ({dur:.2f} s) for {len(words)} words")
        if float(np.sqrt(np.mean(np.square(wav, dtype=np.float64)))) < self.min_rms:
            raise AlignError("audio is silent (RMS below -60 dBFS)")
        keys = [w.lower() for w in words]
        oov = self._pronounce(keys)
        try:
            self.decoder.set_align_text(" ".join(keys))
        except RuntimeError as e:
            raise AlignError(f"pocketsphinx refused the transcript ({e})") from e
        self.decoder.start_utt()
        self.decoder.process_raw(_pcm(wav, self.dither), full_utt=True)
        self.decoder.end_utt()
        if self.decoder.hyp() is None:
            raise AlignError("no alignment found (audio and transcript do not match, or the "
                             "utterance is too long for the beam)")
        segs = [s for s in self.decoder.seg() if not s.word.startswith(_FILLERS)]
        got = [s.word.split("(")[0] for s in segs]
        if got != keys:
            raise AlignError(f"alignment lost words ({len(got)} of {len(keys)} aligned)")
        out = []
        last = math.floor(dur * 1000) / 1000  # times in ms, never past the audio
        for w, s in zip(words, segs):
            start = min(max(round(s.start_frame / self.frate - PAD_S, 3), 0.0), last)
            end = min(max(round((s.end_frame + 1) / self.frate - PAD_S, 3), start), last)
            out.append([w, start, end])
        outside = [w for w, s, e in out if e - s < 0.01]
        if outside:
            raise AlignError(f"words placed outside the speech ({', '.join(outside[:5])}): the "
                             f"transcript does not match the audio")
        share = uncovered_speech(wav, out)
        if share > self.max_uncovered:
            raise AlignError(f"{share:.0%} of the speech is outside every word (limit "
                             f"{self.max_uncovered:.0%}): the transcript misses much of the audio")
        return Alignment(out, oov, share)


def identity(oov: str) -> str:
    """What made the timings, for summary.json (``pocketsphinx-5.1.1 en-us cmudict oov=espeak``)."""
    return f"pocketsphinx-{_version()} en-us cmudict oov={oov}"


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("pocketsphinx")
    except Exception:  # noqa: BLE001 - only a label
        return "?"
