"""Native decoder: shapes, doc masking, positions, KV cache, params/FLOPs, checkpoints."""

from __future__ import annotations

import json

import pytest
import torch

from slamlm.model import (
    CheckpointError,
    KVCache,
    SpeechLM,
    SpeechLMConfig,
    load_checkpoint,
    named_shape,
    save_checkpoint,
)
from slamlm.model.masks import doc_positions

torch.set_num_threads(1)


@pytest.fixture
def tiny():
    torch.manual_seed(0)
    return SpeechLM(named_shape("tiny", vocab_size=37)).eval()


def test_forward_shape_and_dtype(tiny):
    ids = torch.randint(0, 37, (3, 11))
    out = tiny(ids)
    assert out.shape == (3, 11, 37) and out.dtype == torch.float32
    assert torch.isfinite(out).all()


def test_doc_positions_restart():
    doc = torch.tensor([[0, 0, 0, 1, 1, 2, 2, 2], [5, 5, 5, 5, 5, 5, 5, 5]])
    assert doc_positions(doc).tolist() == [[0, 1, 2, 0, 1, 0, 1, 2], list(range(8))]
    # an id reused later in the row is a new document
    assert doc_positions(torch.tensor([[0, 0, 1, 0, 0]])).tolist() == [[0, 1, 0, 0, 1]]


def test_packed_docs_equal_separate_forwards(tiny):
    torch.manual_seed(1)
    a, b, c = (torch.randint(0, 37, (1, n)) for n in (5, 7, 4))
    packed = torch.cat([a, b, c], dim=1)
    doc = torch.tensor([[0] * 5 + [1] * 7 + [2] * 4])
    out = tiny(packed, doc_ids=doc)
    ref = torch.cat([tiny(a), tiny(b), tiny(c)], dim=1)
    assert (out - ref).abs().max() < 1e-5
    # without doc_ids the second doc sees the first: logits differ
    assert (tiny(packed)[:, 5:] - ref[:, 5:]).abs().max() > 1e-3


def test_kv_cache_matches_full_forward(tiny):
    ids = torch.randint(0, 37, (2, 12))
    full = tiny(ids)
    cache = KVCache.empty(tiny, batch_size=2, max_len=16)
    outs = [tiny(ids[:, :5], cache=cache)]  # prefill, then token by token
    for t in range(5, 12):
        outs.append(tiny(ids[:, t:t + 1], cache=cache))
    assert cache.length == 12
    assert (torch.cat(outs, dim=1) - full).abs().max() < 1e-5


def test_kv_cache_left_padding_matches_unpadded(tiny):
    torch.manual_seed(2)
    long, short = torch.randint(3, 37, (1, 9)), torch.randint(3, 37, (1, 6))
    ids = torch.cat([long, torch.cat([torch.zeros(1, 3, dtype=torch.long), short], 1)])
    am = torch.ones(2, 9, dtype=torch.bool)
    am[1, :3] = False
    cache = KVCache.empty(tiny, 2, 12)
    first = tiny(ids, cache=cache, attention_mask=am)
    nxt = torch.tensor([[5], [7]])
    am2 = torch.cat([am, torch.ones(2, 1, dtype=torch.bool)], 1)
    step = tiny(nxt, cache=cache, attention_mask=am2)
    ref_long = tiny(torch.cat([long, nxt[:1]], 1))
    ref_short = tiny(torch.cat([short, nxt[1:]], 1))
    assert (first[0] - ref_long[0, :9]).abs().max() < 1e-5
    assert (first[1, 3:] - ref_short[0, :6]).abs().max() < 1e-5
    assert (step[0, 0] - ref_long[0, 9]).abs().max() < 1e-5
    assert (step[1, 0] - ref_short[0, 6]).abs().max() < 1e-5


def test_cache_overflow_and_bad_mask(tiny):
    cache = KVCache.empty(tiny, 1, 4)
    with pytest.raises(ValueError, match="KV cache full"):
        tiny(torch.zeros(1, 5, dtype=torch.long), cache=cache)
    with pytest.raises(ValueError, match="attention_mask shape"):
        tiny(torch.zeros(1, 3, dtype=torch.long), attention_mask=torch.ones(1, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="doc_ids cannot"):
        tiny(torch.zeros(1, 3, dtype=torch.long), doc_ids=torch.zeros(1, 3, dtype=torch.long),
             cache=KVCache.empty(tiny, 1, 4))


def test_slam_358m_params_and_flops():
    with torch.device("meta"):
        m = SpeechLM(named_shape("slam-358m"))
    n = m.num_params()
    assert 357e6 < n < 360e6
    assert m.model.embed_tokens.weight.shape == (503, 896)
    f = m.flops_per_token(1024)
    assert abs(f - 2.28e9) < 0.01e9
    assert abs(f - 6 * n - 6 * 24 * 896 * 1024) < 1


def test_tied_and_untied_heads():
    tied = SpeechLM(named_shape("tiny", vocab_size=11))
    assert tied.lm_head.weight is tied.model.embed_tokens.weight
    untied = SpeechLM(named_shape("tiny", vocab_size=11, tie_embeddings=False))
    assert untied.lm_head.weight is not untied.model.embed_tokens.weight
    assert untied.num_params() == tied.num_params() + 11 * 64


def test_bad_config_is_named():
    with pytest.raises(ValueError, match="multiple of n_kv_heads"):
        SpeechLMConfig(n_heads=4, n_kv_heads=3, hidden_size=64)
    with pytest.raises(ValueError, match="unknown model shape 'huge'"):
        named_shape("huge")


def test_checkpoint_roundtrip_and_errors(tiny, tmp_path):
    folder = tmp_path / "ckpt"
    save_checkpoint(tiny, {"vocab": {"n_units": 34}, "init": {"method": "random"}}, folder)
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    model, meta = load_checkpoint(folder)
    ids = torch.randint(0, 37, (2, 6))
    assert torch.equal(model(ids), tiny(ids))
    assert meta["init"] == {"method": "random"} and meta["model"]["vocab_size"] == 37
    assert model.lm_head.weight is model.model.embed_tokens.weight
    bf, _ = load_checkpoint(folder, dtype=torch.bfloat16)
    assert bf.model.embed_tokens.weight.dtype == torch.bfloat16
    assert (bf(ids) - tiny(ids)).abs().max() < 0.1
    # vocabulary bigger than the model
    cfg = json.loads((folder / "config.json").read_text())
    cfg["vocab"]["n_units"] = 500
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="vocabulary of 503 tokens"):
        load_checkpoint(folder)
    cfg["vocab"]["n_units"] = 34
    cfg["model"]["n_layers"] = 3
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="weights do not match config.json"):
        load_checkpoint(folder)
    (folder / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="missing weights"):
        load_checkpoint(folder)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope")


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_flex_block_mask_matches_sdpa_cpu(tiny):
    """The BlockMask (eager flex_attention on CPU) gives the SDPA doc-masked logits."""
    ids = torch.randint(0, 37, (2, 40))
    doc = torch.tensor([[0] * 15 + [1] * 25, [3] * 33 + [4] * 7])
    with torch.no_grad():
        ref = tiny(ids, doc_ids=doc)
        tiny.set_attn_impl("flex")
        out = tiny(ids, doc_ids=doc)
    assert (out - ref).abs().max() < 1e-5
    with pytest.raises(ValueError, match="attn_impl must be"):
        tiny.set_attn_impl("flash")


@pytest.mark.gpu
def test_flex_compiled_gpu_bf16():
    torch.manual_seed(0)
    m = SpeechLM(named_shape("small", vocab_size=503)).cuda().eval()
    ids = torch.randint(0, 503, (4, 256), device="cuda")
    doc = (torch.arange(256, device="cuda") // 100).expand(4, 256).contiguous()
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
        ref = m(ids, doc_ids=doc)
        m.set_attn_impl("flex")
        out = m(ids, doc_ids=doc)
        out2 = m(ids.roll(1, 1), doc_ids=doc.roll(7, 1))  # new batch, same shape: no recompile
    assert (out - ref).abs().max() < 0.05 and torch.isfinite(out2).all()
    sep = m(ids[:, 100:200])
    assert (out[:, 100:200] - sep).abs().max() < 0.05


def test_forward_traces_without_graph_breaks(tiny):
    """torch.compile-friendly: dynamo captures the doc-masked forward as one graph."""
    torch._dynamo.reset()
    ids = torch.randint(0, 37, (2, 16))
    explained = torch._dynamo.explain(tiny)(ids, doc_ids=torch.tensor([[0] * 5 + [1] * 11] * 2))
    assert explained.graph_break_count == 0 and explained.graph_count == 1
