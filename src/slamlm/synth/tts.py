"""TTS backends: ``synthesize(text, voice) -> (wav float32, sr, words)``, words timed.

``words`` is ``[[word, start_s, end_s], ...]``: exactly one entry per word of the text (see
:func:`text_words`), in order, non-overlapping, inside the audio. The espeak-ng backend times
words from the engine's WORD events (start = event sample; end = next word start, the end of
the clause, trimmed of trailing silence) and repairs words the engine merged (no event: the
span is split in proportion to letters) or split (several events: the first one counts). The
flite backend has no word events: its timings are estimated in proportion to letters.

The espeak-ng backend also times phonemes (:meth:`EspeakBackend.synthesize_phones`):
``[[phone, start_s, end_s], ...]`` from the engine's PHONEME events, covering the audio from
the first phoneme to the end, pauses named ``"_"``. The phone-posterior unit encoder
(:mod:`slamlm.units.phones`) learns from these.

Example:
    >>> tts = get_backend("espeak")
    >>> wav, sr, words = tts.synthesize("The cat sat.", Voice("en-us"))
    >>> sr, [w[0] for w in words]
    (16000, ['The', 'cat', 'sat'])
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from slamlm.audio import TARGET_SR, resample

log = logging.getLogger(__name__)

_JOINERS = "'\u2019-\u2010\u2011"  # apostrophes / hyphens kept inside a word
MIN_WORD_S = 0.01

# gender of the default voices (SALMon-like pairs); any other voice: see voice_gender()
VOICE_GENDER = {
    "en-us": "m", "en": "m", "en-us+m3": "m", "en-GB-x-rp+m7": "m",
    "en-us+f3": "f", "en+f2": "f", "en-us+f4": "f",
}
DEFAULT_VOICES = ("en-us", "en-us+f3", "en", "en+f2", "en-us+m3")  # "en" is British


@dataclass(frozen=True)
class Voice:
    """A voice name plus speaking rate (words/min) and pitch (0-100)."""

    name: str
    rate: int = 175
    pitch: int = 50

    def to_dict(self) -> dict:
        return {"name": self.name, "rate": self.rate, "pitch": self.pitch}


Words = list[list]
Phones = list[list]


class TTSBackend(Protocol):
    name: str

    def synthesize(self, text: str, voice: Voice) -> tuple[np.ndarray, int, Words]:
        """Speak ``text``: (mono float32 wav at 16 kHz, 16000, word timings)."""
        ...


def voice_gender(name: str) -> str:
    """``"m"`` or ``"f"`` for any espeak-ng voice: a ``+variant`` says it (its data file's
    ``gender`` line; ``+f3`` is female in every language), a bare language voice is male.

    Example:
        >>> voice_gender("es+f3"), voice_gender("ru"), voice_gender("en-us+f3")
        ('f', 'm', 'f')
    """
    if name in VOICE_GENDER:
        return VOICE_GENDER[name]
    _, _, variant = name.partition("+")
    if not variant:
        return "m"
    from slamlm.synth.espeak import variant_gender

    return variant_gender(variant) or ("f" if variant[:1].lower() == "f" else "m")


def normalize_text(text: str, ascii_fold: bool = False) -> str:
    """Unicode NFC and collapsed white space (char offsets then match the engine's, which
    counts code points in every script); ``ascii_fold`` drops accents and non-ASCII letters
    (English-only tools such as pocketsphinx's dictionary).

    Example:
        >>> normalize_text("  Niño  café "), normalize_text("Niño café", ascii_fold=True)
        ('Niño café', 'Nino cafe')
    """
    if ascii_fold:
        text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return " ".join(unicodedata.normalize("NFC", text).split())


def _is_word_char(c: str) -> bool:
    return unicodedata.category(c)[0] in "LMN"  # letters, combining marks (matras), digits


def text_words(text: str) -> list[tuple[str, int, int]]:
    """Words of ``text`` as (word, start_char, end_char), in any script: runs of letters,
    combining marks and digits; apostrophes/hyphens between two word chars stay inside.

    Example:
        >>> [w for w, _, _ in text_words("¿Qué tal? Кошка спит, don't-stop नमस्ते")]
        ['Qué', 'tal', 'Кошка', 'спит', "don't-stop", 'नमस्ते']
    """
    out, i, n = [], 0, len(text)
    while i < n:
        if not _is_word_char(text[i]):
            i += 1
            continue
        j = i + 1
        while j < n and (_is_word_char(text[j]) or (
                text[j] in _JOINERS and j + 1 < n and _is_word_char(text[j + 1]))):
            j += 1
        out.append((text[i:j], i, j))
        i = j
    return out


def _voiced_mask(wav: np.ndarray, sr: int, thresh: float = 0.01) -> np.ndarray:
    """Per-sample "not silence" mask from 5 ms frame peaks."""
    hop = max(1, sr // 200)
    n = int(np.ceil(len(wav) / hop))
    padded = np.zeros(n * hop, np.float32)
    padded[: len(wav)] = np.abs(wav)
    frames = padded.reshape(n, hop).max(axis=1) > thresh
    return np.repeat(frames, hop)[: len(wav)]


def _fill_starts(starts: list[int | None], words, first: int, last: int) -> list[int]:
    """Give words without an event a start, splitting the gap in proportion to letters."""
    out = list(starts)
    if out and out[0] is None:
        out[0] = first
    i = 0
    while i < len(out):
        if out[i] is not None:
            i += 1
            continue
        a = i - 1  # last anchored word
        b = i
        while b < len(out) and out[b] is None:
            b += 1
        end = out[b] if b < len(out) else last
        lens = [len(words[k][0]) for k in range(a, b)]
        total = sum(lens) or 1
        pos = float(out[a])
        span = max(0, end - out[a])
        for k, n in zip(range(a, b), lens):
            out[k] = int(round(pos))
            pos += span * n / total
        i = b
    return [int(s) for s in out]  # type: ignore[arg-type]


def align_words(text: str, events, wav: np.ndarray, sr: int) -> Words:
    """One [word, start_s, end_s] per word of ``text`` from engine events (see module doc)."""
    words = text_words(text)
    if not words:
        return []
    voiced = np.flatnonzero(_voiced_mask(wav, sr))
    first = int(voiced[0]) if len(voiced) else 0
    last = int(voiced[-1]) + 1 if len(voiced) else len(wav)
    word_starts = [w[1] for w in words]
    starts: list[int | None] = [None] * len(words)
    clause_ends = sorted(e.sample for e in events if e.kind == "end")
    for e in events:
        if e.kind != "word":
            continue
        k = int(np.searchsorted(word_starts, e.pos, side="right")) - 1
        k = max(k, 0)
        if starts[k] is None or e.sample < starts[k]:  # split word: the first event counts
            starts[k] = min(max(e.sample, 0), len(wav))
    # keep starts monotonic (the engine can report a later word before an earlier one)
    prev = -1
    for k, s in enumerate(starts):
        if s is not None and s < prev:
            starts[k] = None
        elif s is not None:
            prev = s
    filled = _fill_starts(starts, words, first, last)
    return _word_ends(words, filled, clause_ends, voiced, first, last, len(wav), sr)


def _word_ends(words, starts, clause_ends, voiced, first, last, n, sr) -> Words:
    min_len = max(1, int(MIN_WORD_S * sr))
    out: Words = []
    prev_end = 0
    for k, (w, _, _) in enumerate(words):
        nxt = starts[k + 1] if k + 1 < len(words) else last
        s = max(starts[k], prev_end)
        ce = [c for c in clause_ends if s < c <= nxt]
        e = min(ce[0] if ce else nxt, nxt)
        # trim silence at both edges of the span
        lo, hi = np.searchsorted(voiced, s), np.searchsorted(voiced, e)
        if hi > lo:
            s, e = int(voiced[lo]), int(voiced[hi - 1]) + 1
        e = max(e, s + min_len)
        e = min(e, n) if k + 1 == len(words) else min(e, max(nxt, s + min_len))
        s = min(s, e - 1)
        out.append([w, round(s / sr, 4), round(e / sr, 4)])
        prev_end = e
    return out


def phone_spans(events, n_samples: int, sr: int) -> Phones:
    """[[phone, start_s, end_s], ...] from PHONEME events: each phone lasts until the next one
    starts (the last until ``n_samples``); names starting with "_" are pauses, named "_";
    empty spans are dropped.

    Example:
        >>> from slamlm.synth.espeak import SynthEvent
        >>> ev = [SynthEvent("phoneme", 0, 0, 100, "k"), SynthEvent("phoneme", 0, 0, 300, "_:")]
        >>> phone_spans(ev, 400, 100)
        [['k', 1.0, 3.0], ['_', 3.0, 4.0]]
    """
    marks = [(min(max(e.sample, 0), n_samples), "_" if e.name.startswith("_") else e.name)
             for e in events if e.kind == "phoneme" and e.name]
    out: Phones = []
    for k, (s, name) in enumerate(marks):
        e = marks[k + 1][0] if k + 1 < len(marks) else n_samples
        if e > s:
            out.append([name, round(s / sr, 4), round(e / sr, 4)])
    return out


class EspeakBackend:
    """espeak-ng (default). Output 16 kHz float32; ``isolate`` -> deterministic samples."""

    name = "espeak"

    def __init__(self, isolate: bool = True, seed: int = 0):
        from slamlm.synth.espeak import EspeakEngine

        self.engine = EspeakEngine.get()
        self.isolate = isolate
        self.seed = seed

    def synthesize(self, text: str, voice: Voice) -> tuple[np.ndarray, int, Words]:
        wav, sr, words, _ = self.synthesize_phones(text, voice)
        return wav, sr, words

    def synthesize_phones(self, text: str, voice: Voice) -> tuple[np.ndarray, int, Words, Phones]:
        """:meth:`synthesize` plus phone timings (see :func:`phone_spans`)."""
        text = normalize_text(text)
        if not text_words(text):
            raise ValueError(f"nothing to speak in {text!r}")
        pcm, sr, events = self.engine.synth(
            text, voice.name, voice.rate, voice.pitch, seed=self.seed, isolate=self.isolate
        )
        if len(pcm) == 0:
            raise RuntimeError(f"espeak-ng produced no audio for {text[:60]!r}")
        wav = pcm.astype(np.float32) / 32768.0
        words = align_words(text, events, wav, sr)
        phones = phone_spans(events, len(wav), sr)
        out = resample(wav, sr, TARGET_SR)
        dur = len(out) / TARGET_SR  # times are in seconds: only clip to the resampled length
        words = [[w, round(min(s, dur), 4), round(min(e, dur), 4)] for w, s, e in words]
        phones = [[p, round(min(s, dur), 4), round(min(e, dur), 4)] for p, s, e in phones]
        return out, TARGET_SR, words, phones


class FliteBackend:
    """Debian ``flite`` binary via subprocess. No word events: timings are estimated in
    proportion to letters over the voiced part of the audio."""

    name = "flite"

    def __init__(self) -> None:
        self.binary = shutil.which("flite")
        if not self.binary:
            raise RuntimeError("flite is not installed (apt-get install flite) ")

    def synthesize(self, text: str, voice: Voice) -> tuple[np.ndarray, int, Words]:
        import soundfile as sf

        text = normalize_text(text)
        flite_voice = voice.name.removeprefix("flite:") or "slt"
        with tempfile.TemporaryDirectory() as d:
            out = Path(d) / "a.wav"
            subprocess.run([self.binary, "-voice", flite_voice, "-t", text, "-o", str(out)],
                           check=True, capture_output=True, timeout=120)
            wav, sr = sf.read(str(out), dtype="float32")
        wav = resample(wav, sr, TARGET_SR)
        words = align_words(text, [], wav, TARGET_SR)  # no events: proportional estimate
        return wav, TARGET_SR, words


def get_backend(name: str = "espeak", **kwargs) -> TTSBackend:
    """``"espeak"`` (default) or ``"flite"``."""
    if name == "espeak":
        return EspeakBackend(**kwargs)
    if name == "flite":
        return FliteBackend()
    raise ValueError(f"unknown TTS backend {name!r}; choose espeak or flite")
