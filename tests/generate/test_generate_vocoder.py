"""Mel inverse (weight-free) quality on real speech, and load_vocoder dispatch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from slamlm.audio import load_audio
from slamlm.generate.mel_inverse import MelInverter, MelStats
from slamlm.generate.vocoder import HiFiGANVocoder, MelVocoder, load_vocoder
from slamlm.units.encoders import MelEncoder
from slamlm.units.extractor import UnitExtractor, dedup
from slamlm.units.kmeans import fit_kmeans, save_kmeans


@pytest.fixture(scope="module")
def mel_setup(tmp_path_factory, peer_example_dir):
    wav = load_audio(peer_example_dir / "audio1.flac")[: 4 * 16000]
    enc = MelEncoder()
    km = fit_kmeans(enc.features([wav])[0], k=24, seed=0, encoder="mel", layer=0)
    save_kmeans(km, tmp_path_factory.mktemp("km") / "kmeans.safetensors")
    return wav, UnitExtractor(enc, km)


def test_mel_inverse_resynthesises_the_same_units(mel_setup):
    wav, ex = mel_setup
    units = ex.encode([wav])[0]
    uu, dur = dedup(units)
    out = MelInverter(ex.kmeans.centroids, n_iter=16)(uu, dur, reference=wav)
    assert out.dtype == np.float32 and out.shape == (len(units) * 640,)
    assert np.isfinite(out).all() and 0.01 < np.abs(out).max() <= 0.99
    again = ex.encode([out])[0]
    agreement = float((again == units[: len(again)]).mean())
    assert agreement > 0.6, agreement  # chance is ~1/24
    raw = MelEncoder(normalize="none")
    a, b = raw.features([wav])[0][: len(again)], raw.features([out])[0]
    assert np.corrcoef(a.flatten(), b.flatten())[0, 1] > 0.8
    assert abs(float(a.mean() - b.mean())) < 1.5  # level taken from the reference


def test_mel_stats_and_errors(mel_setup):
    wav, ex = mel_setup
    stats = MelStats.from_wav(wav, ex.encoder)
    assert stats.mean.shape == (80,) and bool((stats.std > 0).all())
    generic = MelStats.generic()
    assert generic.mean[0] > generic.mean[-1]  # falling spectrum
    inv = MelInverter(ex.kmeans.centroids, n_iter=4)
    assert inv(np.array([1, 2]), np.array([3, 1])).shape == (4 * 640,)
    assert inv(np.zeros(0, np.int64)).shape == (0,)
    with pytest.raises(ValueError, match="outside the k-means of 24"):
        inv(np.array([30]))
    with pytest.raises(ValueError, match="not a mel k-means"):
        MelInverter(torch.zeros(4, 768))


def test_load_vocoder_dispatch(mel_setup, tmp_path):
    from slamlm.generate.hifigan import CodeHiFiGAN, save_code_hifigan

    _, ex = mel_setup
    ident = ex.identity()
    voc = load_vocoder("auto", ident)
    assert isinstance(voc, MelVocoder) and voc.sample_rate == 16000
    hub = {"encoder": "hubert:some/model", "k": 24, "kmeans_path": None}
    with pytest.raises(ValueError, match="hifigan:PATH"):
        load_vocoder("auto", hub)
    with pytest.raises(ValueError, match="mel units only"):
        load_vocoder("mel", hub)
    with pytest.raises(ValueError, match="unknown vocoder"):
        load_vocoder("wavenet", ident)
    with pytest.raises(ValueError, match="hash"):
        load_vocoder("mel", {**ident, "kmeans_hash": "0" * 16})
    cfg = {"upsample_rates": [5, 4, 4, 8], "upsample_kernel_sizes": [11, 8, 8, 16],
           "upsample_initial_channel": 32, "resblock_kernel_sizes": [3],
           "resblock_dilation_sizes": [[1, 3, 5]], "num_embeddings": 24, "embedding_dim": 8,
           "model_in_dim": 8}
    torch.manual_seed(0)
    save_code_hifigan(CodeHiFiGAN(cfg), tmp_path / "hg")
    voc = load_vocoder(f"hifigan:{tmp_path / 'hg'}", hub)
    assert isinstance(voc, HiFiGANVocoder)
    assert voc(np.array([1, 2, 3]), np.array([2, 1, 1])).shape == (4 * 640,)
    assert voc(np.array([1, 2, 3])).shape == (3 * 640,)  # no duration predictor: 1 frame each
    with pytest.raises(ValueError, match="another k-means"):
        load_vocoder(f"hifigan:{tmp_path / 'hg'}", {**hub, "k": 500})
