"""Pure interleaving functions: word->unit spans, span choice, round trips."""

from __future__ import annotations

import math

import numpy as np
import pytest

from slamlm.interleave.spans import (
    choose_spans,
    interleave,
    speech_only,
    split_units,
    strip_markers,
    text_only,
    token_modality,
    word_unit_spans,
)
from slamlm.vocab import UnitVocab, VocabError

VOCAB = UnitVocab(n_units=20, n_text=50)


def toy_tokenize(s: str) -> list[int]:
    """Deterministic toy tokenizer: each word -> 1 or 2 ids derived from its letters."""
    out = []
    for w in s.split():
        h = sum(map(ord, w))
        out.append(h % 50)
        if len(w) > 3:
            out.append((h * 7) % 50)
    return out


def test_word_unit_spans_hand_built():
    # 6 dedup units with run lengths (frames at 25 Hz = 40 ms):
    # unit: 0    1    2     3    4    5
    # dur : 2    1    3     2    1    3      -> start frames 0,2,3,6,8,9 (end 12)
    dur = [2, 1, 3, 2, 1, 3]
    words = [["the", 0.08, 0.12],   # frames 2..3 ; leading silence (unit 0) attaches here
             ["cat", 0.12, 0.32],   # frames 3..8
             ["sat", 0.36, 0.40]]   # frame 9; gap frame 8 (unit 4) attaches to "sat"
    spans = word_unit_spans(dur, words)
    assert spans == [(0, 2), (2, 4), (4, 6)]
    # a unit straddling the end of a word goes to the word it starts in
    assert word_unit_spans([3, 3], [["a", 0.0, 0.08], ["b", 0.08, 0.24]]) == [(0, 1), (1, 2)]
    # partition: contiguous, covers every unit exactly once
    flat = [i for s, e in spans for i in range(s, e)]
    assert flat == list(range(len(dur)))


def test_word_unit_spans_edge_cases():
    # a word shorter than a unit run gets an empty span, the partition still holds
    spans = word_unit_spans([10, 5], [["a", 0.0, 0.1], ["b", 0.1, 0.2], ["c", 0.4, 0.6]])
    assert spans == [(0, 1), (1, 1), (1, 2)]
    # trailing silence goes to the last word; backwards times are clamped
    assert word_unit_spans([1] * 5, [["x", 0.0, 0.12], ["y", 0.04, 0.08]]) == [(0, 3), (3, 5)]
    assert word_unit_spans([1, 2], []) == []
    with pytest.raises(ValueError, match="durations"):
        word_unit_spans([1, 0], [["a", 0, 1]])
    with pytest.raises(ValueError, match="word 0"):
        word_unit_spans([1], [["a", 0.0]])
    # dict-style words and another frame rate (50 Hz -> 20 ms frames)
    assert word_unit_spans([1, 1, 1], [{"start": 0, "end": 0.02}, {"start": 0.02, "end": 0.06}],
                           frame_rate=50) == [(0, 1), (1, 3)]


def test_choose_spans_statistics_and_alternation():
    rng = np.random.default_rng(1)
    speech_words = total = 0
    lengths = []
    for _ in range(300):
        n = int(rng.integers(1, 80))
        spans = choose_spans(n, rng)
        assert spans[0][0] == 0 and spans[-1][1] == n
        for (_s0, e0, m0), (s1, _, m1) in zip(spans, spans[1:]):
            assert e0 == s1 and m0 != m1
        assert all(e > s for s, e, _ in spans)
        speech_words += sum(e - s for s, e, m in spans if m == "speech")
        total += n
        lengths += [e - s for s, e, m in spans if m == "speech" and e < n]
    # the quota ceil(0.3 n) plus the last span's overshoot: about 0.4, as the peer's ~0.41
    assert 0.32 < speech_words / total < 0.48
    assert 6 < np.mean(lengths) < 14  # Poisson(10) spans, some clipped, some merged
    assert choose_spans(0, rng) == []
    assert choose_spans(7, rng, p_speech=1.0) == [(0, 7, "speech")]
    assert choose_spans(7, rng, p_speech=0.0) == [(0, 7, "text")]
    with pytest.raises(ValueError, match="p_speech"):
        choose_spans(3, rng, p_speech=1.5)


@pytest.mark.parametrize("p_speech,mean_words", [(0.3, 10.0), (0.3, 1.0), (0.5, 4.0), (0.05, 20.0)])
def test_every_document_gets_its_speech_quota(p_speech, mean_words):
    """slamkit's guarantee: at least ceil(p * n) of the n words of each document are speech."""
    rng = np.random.default_rng(7)
    for n in list(range(1, 60)) + [int(x) for x in rng.integers(60, 400, 40)]:
        spans = choose_spans(n, rng, mean_words=mean_words, p_speech=p_speech)
        n_speech = sum(e - s for s, e, m in spans if m == "speech")
        assert n_speech >= math.ceil(p_speech * n) >= -(-round(p_speech * 100) * n // 100)
        if p_speech == 0.3 and n >= 1:
            assert any(m == "speech" for _, _, m in spans)  # ceil(0.3 n) >= 1


def _make_doc(n_words: int, rng: np.random.Generator):
    names = [f"w{int(rng.integers(0, 999))}" for _ in range(n_words)]
    dur = rng.integers(1, 5, size=n_words * 3)
    frames = np.cumsum(dur)
    t = np.linspace(0, frames[-1] / 25.0, n_words + 1)
    words = [[names[i], float(t[i]), float(t[i + 1])] for i in range(n_words)]
    units = rng.integers(0, VOCAB.n_units, size=dur.size)
    return names, words, units, dur


def test_interleave_round_trip_restores_each_modality():
    rng = np.random.default_rng(0)
    for _ in range(50):
        names, words, units, dur = _make_doc(int(rng.integers(1, 40)), rng)
        per_word = split_units(units, word_unit_spans(dur, words))
        spans = choose_spans(len(words), rng, mean_words=4, p_speech=0.5)
        ids = interleave(words, per_word, spans, toy_tokenize, VOCAB)
        n_markers = sum(1 for i in ids if i in (VOCAB.text_marker_id, VOCAB.speech_marker_id))
        assert n_markers == len(spans)
        text, unit_ids = strip_markers([VOCAB.bos_id, *ids, VOCAB.eos_id], VOCAB)
        want_text = [t for s, e, m in spans if m == "text"
                     for t in toy_tokenize(" " + " ".join(names[s:e]))]
        want_units = [int(u) for s, e, m in spans if m == "speech"
                      for w in range(s, e) for u in per_word[w]]
        assert text == want_text
        assert unit_ids == want_units
        # the markers sit at the span starts with the right modality
        first = ids[0]
        assert first == (VOCAB.text_marker_id if spans[0][2] == "text"
                         else VOCAB.speech_marker_id)


def test_all_speech_and_all_text_equal_single_modality_streams():
    rng = np.random.default_rng(3)
    names, words, units, dur = _make_doc(12, rng)
    per_word = split_units(units, word_unit_spans(dur, words))
    all_speech = interleave(words, per_word, choose_spans(12, rng, p_speech=1.0),
                            toy_tokenize, VOCAB)
    assert all_speech == speech_only(units, VOCAB)
    assert all_speech[1:] == (np.asarray(units) + 3).tolist()
    all_text = interleave(words, per_word, choose_spans(12, rng, p_speech=0.0),
                          toy_tokenize, VOCAB)
    assert all_text == text_only(names, toy_tokenize, VOCAB)
    assert all_text[0] == VOCAB.text_marker_id
    assert [t - VOCAB.text_offset for t in all_text[1:]] == toy_tokenize(" " + " ".join(names))


def test_token_modality_and_errors():
    ids = [VOCAB.bos_id, VOCAB.text_marker_id, VOCAB.text_offset + 4, VOCAB.speech_marker_id,
           3, 22, VOCAB.eos_id]
    assert token_modality(ids, VOCAB).tolist() == [3, 2, 1, 2, 0, 0, 3]
    with pytest.raises(VocabError, match="text vocabulary of 50"):
        interleave(["a"], [[0]], [(0, 1, "text")], lambda s: [99], VOCAB)
    with pytest.raises(VocabError, match="words 0..1"):
        interleave(["a"], [[25]], [(0, 1, "speech")], toy_tokenize, VOCAB)
    with pytest.raises(ValueError, match="modality"):
        interleave(["a"], [[0]], [(0, 1, "video")], toy_tokenize, VOCAB)
    with pytest.raises(ValueError, match="only 2 units"):
        split_units([1, 2], [(0, 3)])
