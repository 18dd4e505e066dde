"""Generic HF path (OPT, GPT-2): doc masking, cache with left padding, checkpoints."""

from __future__ import annotations

import pytest
import torch

from slamlm.model import KVCache, load_checkpoint, save_checkpoint
from slamlm.model.generic import GenericSpeechLM

torch.set_num_threads(1)


def _tiny(kind: str) -> GenericSpeechLM:
    from transformers import AutoModelForCausalLM, GPT2Config, OPTConfig

    cfg = {
        "opt": OPTConfig(vocab_size=50, hidden_size=32, ffn_dim=64, num_hidden_layers=2,
                         num_attention_heads=4, max_position_embeddings=64,
                         word_embed_proj_dim=32, bos_token_id=1, eos_token_id=2, pad_token_id=0),
        "gpt2": GPT2Config(vocab_size=50, n_embd=32, n_layer=2, n_head=4, n_positions=64,
                           bos_token_id=1, eos_token_id=2),
    }[kind]
    torch.manual_seed(0)
    return GenericSpeechLM(AutoModelForCausalLM.from_config(cfg).eval()).eval()


@pytest.mark.parametrize("kind", ["opt", "gpt2"])
def test_generic_doc_ids_and_cache(kind):
    m = _tiny(kind)
    a, b = torch.randint(3, 50, (1, 7)), torch.randint(3, 50, (1, 5))
    with torch.no_grad():
        ref_a, ref_b = m(a), m(b)
        assert ref_a.shape == (1, 7, 50) and ref_a.dtype == torch.float32
        packed = m(torch.cat([a, b], 1), doc_ids=torch.tensor([[0] * 7 + [1] * 5]))
        assert (packed[:, :7] - ref_a).abs().max() < 1e-5
        assert (packed[:, 7:] - ref_b).abs().max() < 1e-5
        assert (m(torch.cat([a, b], 1))[:, 7:] - ref_b).abs().max() > 1e-4  # mask matters
        cache = KVCache.empty(m, 1, 16)
        steps = torch.cat([m(a[:, i:i + 1], cache=cache) for i in range(7)], 1)
        assert cache.length == 7 and (steps - ref_a).abs().max() < 1e-5
        # left-padded batch, then one cached step
        ids = torch.cat([a, torch.cat([torch.zeros(1, 2, dtype=torch.long), b], 1)])
        am = torch.ones(2, 7, dtype=torch.bool)
        am[1, :2] = False
        cache = KVCache.empty(m, 2, 16)
        first = m(ids, cache=cache, attention_mask=am)
        assert (first[1, 2:] - ref_b[0]).abs().max() < 1e-5
        nxt = torch.tensor([[4], [9]])
        step = m(nxt, cache=cache, attention_mask=torch.cat([am, torch.ones(2, 1, dtype=torch.bool)], 1))
        assert (step[1, 0] - m(torch.cat([b, nxt[1:]], 1))[0, -1]).abs().max() < 1e-5
        assert (step[0, 0] - m(torch.cat([a, nxt[:1]], 1))[0, -1]).abs().max() < 1e-5


def test_generic_checkpoint_roundtrip(tmp_path):
    m = _tiny("opt")
    assert m.config.family == "hf" and m.config.hf_model_type == "opt"
    assert m.tied_keys() == {"hf.lm_head.weight"}
    save_checkpoint(m, {"vocab": {"n_units": 47}}, tmp_path / "ck")
    m2, meta = load_checkpoint(tmp_path / "ck")
    ids = torch.randint(0, 50, (2, 9))
    with torch.no_grad():
        assert torch.equal(m2(ids), m(ids))
    assert isinstance(m2, GenericSpeechLM) and meta["model"]["hf_model_type"] == "opt"
    assert m.flops_per_token(64) == 6 * m.num_params() + 6 * 2 * 32 * 64
