"""Sampling filters (hand values) and KV-cached batched generation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from slamlm.generate.sampling import (
    generate,
    left_pad,
    repetition_penalty_,
    restrict_to_units,
    sample_next,
    top_k_filter,
    top_p_filter,
)
from slamlm.vocab import UnitVocab

INF = float("inf")


def test_top_k_keeps_k_largest():
    out = top_k_filter(torch.tensor([[1.0, 3.0, 2.0, 0.5]]), 2)
    assert out.tolist() == [[-INF, 3.0, 2.0, -INF]]
    assert top_k_filter(torch.tensor([[1.0, 2.0]]), 0).tolist() == [[1.0, 2.0]]


def test_top_p_keeps_smallest_nucleus():
    probs = torch.tensor([[0.5, 0.3, 0.15, 0.05]])
    out = top_p_filter(probs.log(), 0.7)  # 0.5 < 0.7, 0.5 + 0.3 >= 0.7 -> keep two
    assert torch.isfinite(out).tolist() == [[True, True, False, False]]
    out = top_p_filter(probs.log(), 0.4)  # the best token alone already reaches 0.4
    assert torch.isfinite(out).tolist() == [[True, False, False, False]]
    # order of the vocabulary does not matter
    out = top_p_filter(torch.tensor([[0.05, 0.3, 0.5, 0.15]]).log(), 0.7)
    assert torch.isfinite(out).tolist() == [[False, True, True, False]]


def test_repetition_penalty_values():
    logits = torch.tensor([[2.0, -1.0, 4.0]])
    seen = torch.tensor([[True, True, False]])
    assert repetition_penalty_(logits, seen, 2.0).tolist() == [[1.0, -2.0, 4.0]]
    assert repetition_penalty_(logits, seen, 1.0) is logits
    with pytest.raises(ValueError, match="repetition_penalty"):
        repetition_penalty_(logits, seen, 0.0)


def test_restrict_to_units_blocks_specials():
    v = UnitVocab(n_units=2)
    out = restrict_to_units(torch.zeros(1, 6), v)  # one extra padded row (id 5)
    assert torch.isfinite(out).tolist() == [[False, False, True, True, True, False]]
    out = restrict_to_units(torch.zeros(1, 6), v, allow_eos=False)
    assert torch.isfinite(out).tolist() == [[False, False, False, True, True, False]]


def test_sample_next_greedy_and_seeded():
    logits = torch.randn(4, 50, generator=torch.Generator().manual_seed(1))
    assert sample_next(logits, temperature=0).tolist() == logits.argmax(-1).tolist()
    assert sample_next(logits, temperature=1.0, top_k=1).tolist() == logits.argmax(-1).tolist()
    a = sample_next(logits, 1.0, 10, 0.9, torch.Generator().manual_seed(3))
    b = sample_next(logits, 1.0, 10, 0.9, torch.Generator().manual_seed(3))
    assert a.tolist() == b.tolist()
    kept = top_k_filter(logits, 10)
    assert bool(torch.isfinite(kept.gather(1, a[:, None])).all())


def test_left_pad():
    ids, mask = left_pad([np.array([1, 5]), np.array([1, 6, 7, 8])])
    assert ids.tolist() == [[0, 0, 1, 5], [1, 6, 7, 8]]
    assert mask.tolist() == [[False, False, True, True], [True, True, True, True]]
    with pytest.raises(ValueError, match="at least one token"):
        left_pad([np.array([], dtype=np.int64)])


def _greedy_full_forward(model, vocab, prompt, n, penalty=1.0):
    seq = torch.as_tensor(prompt)[None]
    out = []
    with torch.no_grad():
        for _ in range(n):
            logits = restrict_to_units(model(seq)[:, -1].float(), vocab)
            seen = torch.zeros_like(logits, dtype=torch.bool)
            seen[0, seq[0]] = True
            logits = repetition_penalty_(logits, seen, penalty)
            nxt = int(logits.argmax(-1))
            if nxt == vocab.eos_id:
                break
            out.append(nxt)
            seq = torch.cat([seq, torch.tensor([[nxt]])], dim=1)
    return out


def _prompts():
    rng = np.random.default_rng(0)
    return [np.concatenate([[1], 3 + rng.integers(0, 20, n)]) for n in (3, 9, 1, 6)]


def test_greedy_with_cache_equals_full_forwards(tiny_lm):
    model, vocab, factory = tiny_lm
    for prompt in _prompts()[:2]:
        got = generate(model, [prompt], max_new_tokens=12, temperature=0, vocab=vocab,
                       cache_factory=factory)[0]
        assert got.tolist() == _greedy_full_forward(model, vocab, prompt, 12)


def test_repetition_penalty_in_generation_matches_reference(tiny_lm):
    model, vocab, factory = tiny_lm
    prompts = _prompts()[:2]
    got = generate(model, prompts, max_new_tokens=10, temperature=0, vocab=vocab,
                   repetition_penalty=3.0, cache_factory=factory)
    plain = generate(model, prompts, max_new_tokens=10, temperature=0, vocab=vocab)
    for p, g in zip(prompts, got):
        assert g.tolist() == _greedy_full_forward(model, vocab, p, 10, penalty=3.0)
    assert [g.tolist() for g in got] != [q.tolist() for q in plain]


def test_batch_of_unequal_prompts_equals_each_alone(tiny_lm):
    model, vocab, factory = tiny_lm
    prompts = _prompts()
    batched = generate(model, prompts, max_new_tokens=10, temperature=0, vocab=vocab,
                       cache_factory=factory)
    for p, b in zip(prompts, batched):
        alone = generate(model, [p], max_new_tokens=10, temperature=0, vocab=vocab,
                         cache_factory=factory)[0]
        assert b.tolist() == alone.tolist()
        assert b.size == 0 or (b.min() >= 3 and b.max() < 23)


def test_same_seed_same_samples(tiny_lm):
    model, vocab, factory = tiny_lm
    kw = dict(max_new_tokens=15, temperature=1.0, top_k=10, top_p=0.95, vocab=vocab,
              cache_factory=factory, stop_at_eos=False)
    a = generate(model, _prompts(), seed=7, **kw)
    b = generate(model, _prompts(), seed=7, **kw)
    c = generate(model, _prompts(), seed=8, **kw)
    assert [x.tolist() for x in a] == [x.tolist() for x in b]
    assert [x.tolist() for x in a] != [x.tolist() for x in c]
    assert all(len(x) == 15 for x in a)  # no eos allowed -> full length
    assert all(x.min() >= 3 and x.max() < 23 for x in a)


def test_stops_at_eos(tiny_lm):
    model, vocab, factory = tiny_lm
    logits_bias = torch.zeros(vocab.size)
    logits_bias[vocab.eos_id] = 1e4

    class EosLM(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner, self.config = inner, inner.config
            self.n_heads = getattr(inner, "n_heads", None)
            self.head_dim = getattr(inner, "head_dim", None)

        def forward(self, ids, **kw):
            out = self.inner(ids, **kw)
            return out + logits_bias.to(out.dtype) * (ids.shape[1] == 1)

    def factory2(m, *a):
        return factory(m.inner, *a)

    out = generate(EosLM(model), _prompts()[:2], max_new_tokens=8, temperature=0, vocab=vocab,
                   cache_factory=factory2)
    assert [len(o) for o in out] == [1, 1]  # first token from the prompt pass, then eos


@pytest.mark.gpu
def test_cuda_generation_matches_cpu_greedy_and_is_seeded(tiny_lm):
    model, vocab, factory = tiny_lm
    prompts = _prompts()
    cpu = generate(model, prompts, max_new_tokens=10, temperature=0, vocab=vocab)
    gpu_model = model.to("cuda")
    gpu = generate(gpu_model, prompts, max_new_tokens=10, temperature=0, vocab=vocab)
    assert [a.tolist() for a in cpu] == [b.tolist() for b in gpu]
    kw = dict(max_new_tokens=10, temperature=1.0, top_k=10, vocab=vocab, seed=3)
    a, b = generate(gpu_model, prompts, **kw), generate(gpu_model, prompts, **kw)
    assert [x.tolist() for x in a] == [x.tolist() for x in b]
