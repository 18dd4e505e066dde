"""Fixtures for generate tests: a tiny random SpeechLM with the slamlm.model interface."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn


class _StandInCache:
    def __init__(self, model, batch_size, max_len, device, dtype):
        shape = (batch_size, model.n_heads, max_len, model.head_dim)
        self.k = torch.zeros(shape, device=device, dtype=dtype)
        self.v = torch.zeros(shape, device=device, dtype=dtype)
        self.length = 0

    @classmethod
    def empty(cls, model, batch_size, max_len, device, dtype):
        return cls(model, batch_size, max_len, device, dtype)


class _StandInLM(nn.Module):
    """One attention layer + MLP, learned positions from the attention mask's cumsum."""

    def __init__(self, vocab_size, dim=32, n_heads=4, max_len=256):
        super().__init__()
        self.config = type("Cfg", (), {"vocab_size": vocab_size})()
        self.n_heads, self.head_dim = n_heads, dim // n_heads
        self.emb = nn.Embedding(vocab_size, dim)
        self.pos = nn.Embedding(max_len, dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))
        self.head = nn.Linear(dim, vocab_size)

    def forward(self, input_ids, doc_ids=None, cache=None, attention_mask=None):
        B, T = input_ids.shape
        past = cache.length if cache is not None else 0
        if attention_mask is None:
            attention_mask = torch.ones(B, past + T, dtype=torch.bool, device=input_ids.device)
        pos = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)[:, -T:]
        x = self.emb(input_ids) + self.pos(pos)
        q, k, v = self.qkv(x).view(B, T, 3, self.n_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        if cache is not None:
            cache.k[:, :, past:past + T] = k
            cache.v[:, :, past:past + T] = v
            cache.length += T
            k, v = cache.k[:, :, :past + T], cache.v[:, :, :past + T]
        qi = torch.arange(T, device=x.device)[:, None] + past
        kj = torch.arange(past + T, device=x.device)[None, :]
        allowed = (kj <= qi)[None] & attention_mask[:, None, :]
        allowed = allowed | (kj == qi)[None]  # pad queries see themselves (no NaN rows)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(self.head_dim)
        att = att.masked_fill(~allowed[:, None], float("-inf")).softmax(-1)
        x = x + (att @ v).transpose(1, 2).reshape(B, T, -1)
        x = x + self.mlp(x)
        return self.head(x)


@pytest.fixture
def tiny_lm():
    """(model, vocab, cache_factory): the real slamlm.model SpeechLM when it is installed."""
    from slamlm.vocab import UnitVocab

    torch.manual_seed(0)
    vocab = UnitVocab(n_units=20)
    try:
        from slamlm.model import KVCache, SpeechLM, SpeechLMConfig
    except ImportError:
        model = _StandInLM(vocab.size).eval()
        with torch.no_grad():
            model.head.weight.mul_(10)
        return model, vocab, _StandInCache.empty
    cfg = SpeechLMConfig(
        vocab_size=vocab.size, hidden_size=32, n_layers=2, n_heads=4, n_kv_heads=2,
        intermediate_size=64, max_seq_len=256,
    )
    return SpeechLM(cfg).eval(), vocab, KVCache.empty
