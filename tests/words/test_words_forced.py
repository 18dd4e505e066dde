"""pocketsphinx forced alignment against espeak-ng's known word timings; OOV pronunciations."""

from __future__ import annotations

import difflib
import random

import numpy as np
import pytest

pytest.importorskip("pocketsphinx")
pytest.importorskip("espeakng_loader")

from slamlm.synth.tts import Voice, get_backend  # noqa: E402
from slamlm.words.forced import AlignError, ForcedAligner, transcript_words  # noqa: E402
from slamlm.words.phones import espeak_to_cmu, letters_to_cmu  # noqa: E402

TEXTS = ("The little rabbit jumped over the quiet brook.",
         "A small girl found a blue stone near the river.",
         "Every morning the farmers walked to the fields together.",
         "Grandmother told her an old story about a dragon.")


@pytest.fixture(scope="module")
def aligner():
    return ForcedAligner()


@pytest.fixture(scope="module")
def tts():
    return get_backend("espeak")


def test_boundaries_match_espeak_timings(aligner, tts):
    starts, ends = [], []
    for i, text in enumerate(TEXTS):
        wav, sr, ref = tts.synthesize(text, Voice(("en-us", "en-us+f3")[i % 2]))
        got = aligner.align(wav, text).words
        assert [w[0] for w in got] == [w[0] for w in ref] == transcript_words(text)
        assert all(a[1] <= a[2] <= b[1] + 1e-9 for a, b in zip(got, got[1:]))
        assert got[-1][2] <= len(wav) / sr + 1e-9
        starts += [abs(g[1] - r[1]) * 1000 for g, r in zip(got, ref)]
        ends += [abs(g[2] - r[2]) * 1000 for g, r in zip(got, ref)]
    assert np.median(starts) < 100 and np.median(ends) < 100
    assert np.percentile(starts + ends, 90) < 200


def test_oov_words_get_espeak_pronunciations(aligner, tts):
    text = "Zorblax met Quimbertine at dawn."
    wav, _, ref = tts.synthesize(text, Voice("en-us"))
    res = aligner.align(wav, text)
    assert set(res.oov) == {"zorblax", "quimbertine"}
    assert all(v.endswith("(espeak)") for v in res.oov.values())
    assert res.oov["zorblax"].startswith("Z ")
    err = [abs(g[1] - r[1]) * 1000 for g, r in zip(res.words, ref)]
    assert np.median(err) < 100
    with pytest.raises(AlignError, match="not in the CMU dictionary: flurbish"):
        ForcedAligner(oov="fail").align(wav, "flurbish met dawn")


def test_unalignable_audio_fails_with_a_reason(aligner, tts):
    with pytest.raises(AlignError, match="silent"):
        aligner.align(np.zeros(32000, np.float32), "hello there")
    noise = np.random.default_rng(0).normal(0, 0.02, 48000).astype(np.float32)
    with pytest.raises(AlignError, match="no alignment found"):
        aligner.align(noise, "the cat sat on the mat")
    wav, _, _ = tts.synthesize("one two", Voice("en-us"))
    with pytest.raises(AlignError, match="too short|no alignment"):
        aligner.align(wav, " ".join(["word"] * 40))
    with pytest.raises(AlignError, match="no words"):
        aligner.align(wav, "-- !")


def test_espeak_phones_are_close_to_cmudict():
    """espeak-ng -> CMU phones on dictionary words: far closer to CMUdict than spelling."""
    from pocketsphinx import get_model_path

    from slamlm.synth.espeak import EspeakEngine

    cmu = {}
    with open(f"{get_model_path()}/en-us/cmudict-en-us.dict") as f:
        for line in f:
            w, *ph = line.split()
            if "(" not in w and w.isalpha():
                cmu[w] = ph
    words = random.Random(3).sample(sorted(cmu), 150)
    eng = EspeakEngine.get()
    espk = eng.forked(lambda ws: [eng._phonemes_here(w, "en-us") for w in ws], words)

    def sim(a, b):
        return difflib.SequenceMatcher(None, a, b).ratio()

    mapped = [espeak_to_cmu(p) for p in espk]
    assert not {u for _, unk in mapped for u in unk}  # every espeak phoneme has a mapping
    ours = np.mean([sim(ph, cmu[w]) for w, (ph, _) in zip(words, mapped)])
    base = np.mean([sim(letters_to_cmu(w), cmu[w]) for w in words])
    exact = np.mean([ph == cmu[w] for w, (ph, _) in zip(words, mapped)])
    assert ours > 0.8 and exact > 0.35 and ours > base + 0.1
