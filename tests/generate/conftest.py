"""Fixtures for generate tests: a tiny random SpeechLM (slamlm.model) and its vocabulary."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture
def tiny_lm():
    """(model, vocab, cache_factory) for a 2-layer random SpeechLM over 20 units."""
    from slamlm.model import KVCache, SpeechLM, SpeechLMConfig
    from slamlm.vocab import UnitVocab

    torch.manual_seed(0)
    vocab = UnitVocab(n_units=20)
    cfg = SpeechLMConfig(
        vocab_size=vocab.size, hidden_size=32, n_layers=2, n_heads=4, n_kv_heads=2,
        intermediate_size=64, max_seq_len=256,
    )
    return SpeechLM(cfg).eval(), vocab, KVCache.empty


@pytest.fixture(scope="session")
def mel_checkpoint(tmp_path_factory, peer_example_dir):
    """A tiny random SpeechLM checkpoint over 24 mel units fit on a real recording.

    Returns ``(ckpt_folder, prompt_wav_path, extractor)``.
    """
    from slamlm.audio import load_audio, save_audio
    from slamlm.model import SpeechLM, SpeechLMConfig, save_checkpoint
    from slamlm.units.encoders import MelEncoder
    from slamlm.units.extractor import UnitExtractor
    from slamlm.units.kmeans import fit_kmeans, save_kmeans
    from slamlm.vocab import UnitVocab

    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("melckpt")
    wav = load_audio(peer_example_dir / "audio1.flac")[: 4 * 16000]
    prompt = save_audio(root / "prompt.wav", wav)
    enc = MelEncoder()
    km = fit_kmeans(enc.features([wav])[0], k=24, seed=0, encoder="mel", layer=0, max_iter=20)
    save_kmeans(km, root / "kmeans.safetensors")
    ex = UnitExtractor(enc, km)
    vocab = UnitVocab(n_units=24)
    cfg = SpeechLMConfig(vocab_size=vocab.size, hidden_size=32, n_layers=2, n_heads=4,
                         n_kv_heads=2, intermediate_size=64, max_seq_len=256)
    ckpt = save_checkpoint(SpeechLM(cfg), {"vocab": vocab, "units": ex.identity()}, root / "ckpt")
    return ckpt, prompt, ex
