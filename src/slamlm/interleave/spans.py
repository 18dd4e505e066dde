"""Speech-text interleaving (SpiritLM-style): word-aligned unit spans, span choice, token streams.

Pure functions, no I/O. The pieces, in the order a packer uses them:

1. :func:`word_unit_spans` maps each aligned word to a range of *deduplicated* unit indices.
2. :func:`choose_spans` cuts the word sequence into alternating text / speech spans
   (Poisson span lengths; at least ``ceil(p_speech * n)`` of the ``n`` words are speech).
3. :func:`interleave` writes the token stream: ``<text>`` + text-LM tokens for text spans,
   ``<speech>`` + unit tokens for speech spans, like the peer's
   ``"<text> the cat<speech><Un12><Un44>...<text> on the mat"``.
4. :func:`strip_markers` splits a stream back into (text tokens, unit tokens).

Token ids follow :class:`slamlm.vocab.UnitVocab` with ``n_text > 0``: units at
``3 + u``, the text LM's token ``t`` at ``text_offset + t``, then ``<text>``, ``<speech>``.

Example:
    >>> from slamlm.vocab import UnitVocab
    >>> v = UnitVocab(n_units=4, n_text=10)
    >>> spans = word_unit_spans([2, 3, 1], [["a", 0.0, 0.08], ["b", 0.08, 0.24]])
    >>> spans
    [(0, 1), (1, 3)]
    >>> tok = lambda s: [len(w) for w in s.split()]  # toy tokenizer: one id per word
    >>> ids = interleave(["a", "b"], split_units([0, 1, 2], spans), [(0, 1, "text"),
    ...                  (1, 2, "speech")], tok, v)
    >>> ids  # <text> T1 <speech> Un1 Un2
    [17, 8, 18, 4, 5]
    >>> strip_markers(ids, v)
    ([1], [1, 2])
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np

from slamlm.vocab import UnitVocab, VocabError

Modality = Literal["text", "speech"]
TEXT: Modality = "text"
SPEECH: Modality = "speech"


def _word_times(words: Sequence[Any]) -> list[tuple[float, float]]:
    """``[[word, start_s, end_s], ...]`` (or dicts with start/end) -> [(start, end), ...]."""
    out = []
    for i, w in enumerate(words):
        if isinstance(w, dict):
            s, e = w.get("start"), w.get("end")
        else:
            if len(w) < 3:
                raise ValueError(f"word {i}: expected [word, start_s, end_s], got {w!r}")
            s, e = w[1], w[2]
        out.append((float(s), float(e)))
    return out


def word_text(word: Any) -> str:
    """The word of an alignment item: a string, ``[word, start_s, end_s]`` or ``{"word": ...}``."""
    if isinstance(word, str):
        return word
    return word["word"] if isinstance(word, dict) else word[0]


def word_unit_spans(
    durations: Sequence[int], words: Sequence[Any], frame_rate: float = 25.0
) -> list[tuple[int, int]]:
    """Map each aligned word to a half-open range ``[start, end)`` of deduplicated unit indices.

    Unit ``i`` covers frames ``[F_i, F_i + durations[i])`` where ``F_i`` is the cumulative sum
    of earlier durations (one frame = ``1 / frame_rate`` s, 40 ms at 25 Hz).

    Rule (a partition: every unit belongs to exactly one word, spans are contiguous, in
    order, and cover all units):

    - a unit belongs to the *first* word whose end time is after the unit's start time, i.e.
      word ``k`` gets the units that start in ``[end_{k-1}, end_k)``;
    - so silence/gaps between two words attach to the *following* word, leading silence to
      the first word, and every unit that starts after the last word's end (trailing
      silence) to the last word;
    - a unit that straddles a word boundary goes to the word it starts in.

    A word shorter than one unit run can get an empty span (``start == end``). Word times
    that go backwards are clamped to the running maximum.

    Example:
        >>> word_unit_spans([1, 1, 2, 1], [["hi", 0.04, 0.08], ["you", 0.1, 0.2]])
        [(0, 2), (2, 4)]
    """
    if not len(words):
        return []
    dur = np.asarray(durations, dtype=np.int64)
    if dur.size and dur.min() < 1:
        raise ValueError("durations must be >= 1 frame each (deduplicated run lengths)")
    starts = np.concatenate([[0], np.cumsum(dur)[:-1]]) if dur.size else dur  # F_i
    ends = [e for _, e in _word_times(words)]
    bounds = [0]
    running = -math.inf
    for e in ends[:-1]:
        running = max(running, e)
        # first unit with start time >= end_k  <=>  F_i >= end_k * frame_rate
        frame = math.ceil(running * frame_rate - 1e-6)
        bounds.append(max(bounds[-1], int(np.searchsorted(starts, frame, side="left"))))
    bounds.append(int(dur.size))
    return [(bounds[k], bounds[k + 1]) for k in range(len(words))]


def split_units(units: Sequence[int], spans: Sequence[tuple[int, int]]) -> list[np.ndarray]:
    """Cut deduplicated ``units`` into one array per word using :func:`word_unit_spans` output."""
    arr = np.asarray(units, dtype=np.int64)
    if spans and spans[-1][1] > arr.size:
        raise ValueError(f"unit spans end at {spans[-1][1]} but there are only {arr.size} units")
    return [arr[s:e] for s, e in spans]


def choose_spans(
    n_words: int, rng: np.random.Generator, mean_words: float = 10.0, p_speech: float = 0.3
) -> list[tuple[int, int, Modality]]:
    """Cut ``n_words`` words into alternating text/speech spans ``(start, end, modality)``.

    At least ``ceil(p_speech * n_words)`` words are speech, as in the peer toolkit
    (slamkit's ``select_spans_poisson``, ``interleave_span: 10``, ``interleave_prob: 0.3``):
    speech spans of Poisson(``mean_words``) words (at least 1) are laid at random starts
    among the words still text, each running on over text words until it has its length, hits
    a speech word or the end, until the quota is met (the last span may overshoot it, so the
    speech share is a little above ``p_speech``). The rest is text; touching speech spans
    merge, so the result strictly alternates. ``p_speech=1`` gives one speech span,
    ``p_speech=0`` one text span.

    Example:
        >>> choose_spans(25, np.random.default_rng(0), p_speech=0.0)
        [(0, 25, 'text')]
        >>> spans = choose_spans(25, np.random.default_rng(0))
        >>> sum(e - s for s, e, m in spans if m == "speech") >= 8  # ceil(0.3 * 25)
        True
    """
    if not 0.0 <= p_speech <= 1.0:
        raise ValueError(f"p_speech must be in [0, 1], got {p_speech}")
    speech = np.zeros(n_words, dtype=bool)
    quota = math.ceil(p_speech * n_words)  # as the peer computes it (float product)
    while speech.sum() < quota:
        text_words = np.flatnonzero(~speech)
        start = int(text_words[rng.integers(text_words.size)])
        length = max(1, int(rng.poisson(mean_words)))
        stop = start + int(np.argmax(np.r_[speech[start:start + length], True]))
        speech[start:stop] = True  # stop > start: the start word is text
    bounds = np.flatnonzero(np.diff(speech.astype(np.int8))) + 1
    edges = [0, *bounds.tolist(), n_words] if n_words else []
    return [(a, b, SPEECH if speech[a] else TEXT) for a, b in zip(edges, edges[1:])]


def interleave(
    words: Sequence[Any],
    units: Sequence[Sequence[int]],
    spans: Sequence[tuple[int, int, str]],
    text_tokenize: Callable[[str], Sequence[int]],
    vocab: UnitVocab,
) -> list[int]:
    """Token ids for one interleaved document (no bos/eos; the packer adds those).

    ``words``: the words (strings, or ``[word, start, end]`` items); ``units``: one array of
    deduplicated unit ids per word (:func:`split_units`); ``spans``: from :func:`choose_spans`;
    ``text_tokenize``: the text LM's tokenizer, ``str -> ids`` without special tokens. A text
    span is tokenised as ``" " + " ".join(words)`` (the peer's ``"<text> the cat"``), so
    text is tokenised the same way wherever a span starts. Each span starts with its marker.
    """
    if len(units) != len(words):
        raise ValueError(f"{len(words)} words but {len(units)} per-word unit arrays")
    names = [word_text(w) for w in words]
    out: list[int] = []
    for start, end, mod in spans:
        if mod == TEXT:
            ids = np.asarray(text_tokenize(" " + " ".join(names[start:end])), dtype=np.int64)
            if ids.size and (ids.min() < 0 or ids.max() >= vocab.n_text):
                raise VocabError(f"text token {int(ids.max())} outside the text vocabulary "
                                 f"of {vocab.n_text} (tokenizer of another text LM?)")
            out.append(vocab.text_marker_id)
            out.extend((ids + vocab.text_offset).tolist())
        elif mod == SPEECH:
            seg = [np.asarray(u, dtype=np.int64) for u in units[start:end]]
            u = np.concatenate(seg) if seg else np.zeros(0, dtype=np.int64)
            out.append(vocab.speech_marker_id)
            out.extend(vocab.encode_units(u, where=f"words {start}..{end}").tolist())
        else:
            raise ValueError(f"unknown modality {mod!r} (expected 'text' or 'speech')")
    return out


def token_modality(tokens: Any, vocab: UnitVocab) -> np.ndarray:
    """Per-token class: 0 = unit, 1 = text, 2 = marker (``<text>``/``<speech>``), 3 = special."""
    arr = np.asarray(tokens, dtype=np.int64)
    out = np.full(arr.shape, 3, dtype=np.int64)
    out[vocab.is_unit(arr)] = 0
    out[(arr >= vocab.text_offset) & (arr < vocab.text_offset + vocab.n_text)] = 1
    if vocab.n_text:
        out[(arr == vocab.text_marker_id) | (arr == vocab.speech_marker_id)] = 2
    return out


def strip_markers(tokens: Any, vocab: UnitVocab) -> tuple[list[int], list[int]]:
    """Split a stream into (text-LM token ids, unit ids), each in order; markers, bos/eos and
    pad are dropped. Inverse of :func:`interleave` per modality."""
    arr = np.asarray(tokens, dtype=np.int64)
    kind = token_modality(arr, vocab)
    text = (arr[kind == 1] - vocab.text_offset).tolist()
    units = (arr[kind == 0] - vocab.unit_offset).tolist()
    return text, units


def speech_only(units: Sequence[int], vocab: UnitVocab, marker: bool = True) -> list[int]:
    """A speech-only document: ``<speech>`` + units (the marker is kept for interleaved models)."""
    ids = vocab.encode_units(units).tolist()
    return [vocab.speech_marker_id, *ids] if marker else ids


def text_only(words: Sequence[str], text_tokenize: Callable[[str], Sequence[int]],
              vocab: UnitVocab) -> list[int]:
    """A text-only document: ``<text>`` + text tokens of ``" " + " ".join(words)``."""
    return interleave(list(words), [[] for _ in words], [(0, len(words), TEXT)],
                      text_tokenize, vocab)
