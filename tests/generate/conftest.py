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
