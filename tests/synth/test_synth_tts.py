"""espeak-ng backend: word timings, determinism, alignment repair."""

from __future__ import annotations

import numpy as np
import pytest

from slamlm.synth.espeak import EspeakError, SynthEvent
from slamlm.synth.tts import Voice, align_words, get_backend, text_words

TEXT = "Once upon a time, Lily's dog found 3 red balls in the well-known park. She was happy!"


@pytest.fixture(scope="module")
def tts():
    return get_backend("espeak")


@pytest.mark.parametrize("voice", [Voice("en-us"), Voice("en-us+f3", 150, 70), Voice("en", 200, 30)])
def test_word_timings_cover_every_word_in_order(tts, voice):
    wav, sr, words = tts.synthesize(TEXT, voice)
    assert sr == 16000 and wav.dtype == np.float32 and wav.ndim == 1
    dur = len(wav) / sr
    assert 3.0 < dur < 15.0
    assert [w[0] for w in words] == [w for w, _, _ in text_words(TEXT)]
    prev_end = 0.0
    for w, s, e in words:
        assert 0.0 <= s < e <= dur + 1e-6, (w, s, e)
        assert s >= prev_end - 1e-6, (w, s, prev_end)
        prev_end = e
    # each word span holds sound (not silence)
    for w, s, e in words:
        seg = wav[int(s * sr): int(e * sr)]
        assert np.abs(seg).max() > 0.01, w


def test_same_input_same_samples(tts):
    a = tts.synthesize("The cat sat on the mat.", Voice("en-us+f3", 170, 55))
    tts.synthesize("Something else first, to change the engine state.", Voice("en"))
    b = tts.synthesize("The cat sat on the mat.", Voice("en-us+f3", 170, 55))
    assert np.array_equal(a[0], b[0]) and a[2] == b[2]


def test_rate_changes_duration(tts):
    slow, sr, _ = tts.synthesize(TEXT, Voice("en-us", 120))
    fast, _, _ = tts.synthesize(TEXT, Voice("en-us", 260))
    assert len(slow) > 1.5 * len(fast)


def test_unknown_voice_is_named(tts):
    with pytest.raises(EspeakError, match="no voice 'xx-nope'"):
        tts.synthesize("Hello.", Voice("xx-nope"))


def test_align_repairs_merged_and_split_words():
    sr = 1000
    wav = np.full(1000, 0.5, np.float32)
    text = "aa bbbb cc dd"
    # "bbbb" has no event (merged into "aa"); "cc" has two events (split)
    events = [SynthEvent("word", 0, 2, 0), SynthEvent("word", 8, 1, 500),
              SynthEvent("word", 9, 1, 600), SynthEvent("word", 11, 2, 800),
              SynthEvent("end", 13, 0, 1000)]
    words = align_words(text, events, wav, sr)
    assert [w[0] for w in words] == ["aa", "bbbb", "cc", "dd"]
    assert words[0][1] == 0.0 and words[2][1] == 0.5 and words[3][1] == 0.8
    assert words[1][1] == pytest.approx(500 * 2 / 6 / sr, abs=0.002)  # split by letters
    assert words[-1][2] == 1.0


def test_align_without_events_is_proportional():
    wav = np.concatenate([np.zeros(100), np.full(800, 0.5), np.zeros(100)]).astype(np.float32)
    words = align_words("ab cd", [], wav, 1000)
    assert words == [["ab", 0.1, 0.5], ["cd", 0.5, 0.9]]


def test_flite_backend_optional():
    import shutil

    if shutil.which("flite") is None:
        with pytest.raises(RuntimeError, match="flite is not installed"):
            get_backend("flite")
        pytest.skip("flite binary not installed")
    wav, sr, words = get_backend("flite").synthesize("The cat sat down.", Voice("flite:slt"))
    assert sr == 16000 and [w[0] for w in words] == ["The", "cat", "sat", "down"]
    assert all(0 <= s < e <= len(wav) / sr + 1e-6 for _, s, e in words)


def test_unknown_backend():
    with pytest.raises(ValueError, match="unknown TTS backend 'nope'"):
        get_backend("nope")
