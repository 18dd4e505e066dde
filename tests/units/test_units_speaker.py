"""The Resemblyzer speaker encoder run by our own module: front end vs librosa, embeddings
vs the real Resemblyzer's (saved), voices separate, a clear error without the wheel."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch

from slamlm.units import speaker
from slamlm.units.speaker import (
    INSTALL,
    SpeakerEncoder,
    cosine,
    partial_slices,
    power_mel,
    resemblyzer_weights,
    slaney_filterbank,
)

needs_wheel = pytest.mark.skipif(
    importlib.util.find_spec("resemblyzer") is None,
    reason=f"Resemblyzer wheel (its pretrained.pt) not installed: {INSTALL}")


@pytest.fixture(scope="module")
def enc():
    return SpeakerEncoder()


def test_mel_front_end_matches_librosa():
    librosa = pytest.importorskip("librosa", reason="librosa (the vocoder extra) not installed")
    ref = librosa.filters.mel(sr=16000, n_fft=400, n_mels=40)
    np.testing.assert_allclose(slaney_filterbank().numpy(), ref, rtol=1e-4, atol=1e-7)
    wav = np.random.default_rng(0).standard_normal(8000).astype(np.float32) * 0.1
    want = librosa.feature.melspectrogram(y=wav, sr=16000, n_fft=400, hop_length=160,
                                          n_mels=40).T  # Resemblyzer's wav_to_mel_spectrogram
    got = power_mel(torch.from_numpy(wav), slaney_filterbank(), torch.hann_window(400))
    assert got.shape == want.shape == (51, 40)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-3, atol=1e-6)


def test_partial_slices_follow_resemblyzer():
    assert partial_slices(8000) == [(0, 160)]  # shorter than one partial: one, padded
    # a partial every round(16000 / 1.3 / 160) = 77 frames; the last kept if >= 75% covered:
    # 3 s: the third covers (48000 - 154 * 160) / 25600 = 91%; 2.5 s: 60%, dropped
    assert partial_slices(48000) == [(0, 160), (77, 237), (154, 314)]
    assert partial_slices(40000) == [(0, 160), (77, 237)]
    assert partial_slices(16000 * 10)[-1][1] * 160 >= 16000 * 10 * 0.9
    with pytest.raises(ValueError, match="partial rate"):
        partial_slices(16000, rate=0.1)


@needs_wheel
def test_embeddings_match_the_real_resemblyzer(enc, peer_example_dir):
    """Reference values: Resemblyzer 0.1.4's own VoiceEncoder.embed_utterance on the same
    volume-normalised audio (tests/fixtures/resemblyzer/audio1_embeddings.json)."""
    from slamlm.audio import load_audio

    ref = json.loads((peer_example_dir.parent / "resemblyzer/audio1_embeddings.json").read_text())
    wav = load_audio(peer_example_dir / "audio1.flac")
    for key, n in (("first_3s", 48000), ("first_1s", 16000)):
        e = enc.embed(wav[:n])
        assert e.shape == (256,) and e.dtype == np.float32
        assert abs(float(np.linalg.norm(e)) - 1) < 1e-5 and e.min() >= 0  # ReLU then L2
        assert np.abs(e - np.array(ref[key])).max() < 1e-5, key


@needs_wheel
def test_same_voice_is_closer_than_another_voice(enc):
    from slamlm.synth.tts import Voice, get_backend

    tts = get_backend("espeak")
    texts = ["The little dog ran to the park to find a red ball.",
             "Once upon a time a girl lived in a small house by the sea.",
             "She was very happy because her friend came to play."]
    emb = {v: [enc.embed(tts.synthesize(t, Voice(v))[0]) for t in texts]
           for v in ("en-us", "en-us+f3")}
    same = [cosine(a, b) for v in emb for i, a in enumerate(emb[v]) for b in emb[v][i + 1:]]
    cross = [cosine(a, b) for a in emb["en-us"] for b in emb["en-us+f3"]]
    assert min(same) > max(cross), (same, cross)
    assert np.mean(same) - np.mean(cross) > 0.1


def test_missing_wheel_names_the_install_line(monkeypatch):
    monkeypatch.setattr(speaker.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModuleNotFoundError, match="pip install --no-deps"):
        resemblyzer_weights()
    with pytest.raises(ValueError, match="unknown speaker encoder"):
        speaker.load_speaker_encoder("ecapa")
