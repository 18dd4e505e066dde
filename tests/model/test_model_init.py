"""TWIST init from tiny random text LMs, random init, `slam init` CLI and resume."""

from __future__ import annotations

import json

import pytest
import torch

from slamlm.cli import main
from slamlm.model import load_checkpoint, random_init, twist_init
from slamlm.model.init import InitConfig, init_rows, run_init
from slamlm.vocab import UnitVocab

torch.set_num_threads(1)


@pytest.fixture
def text_qwen(tmp_path):
    from transformers import AutoModelForCausalLM, Qwen2Config

    cfg = Qwen2Config(vocab_size=300, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, rope_theta=1e6,
                      tie_word_embeddings=True, max_position_embeddings=128)
    torch.manual_seed(0)
    hf = AutoModelForCausalLM.from_config(cfg).eval()
    with torch.no_grad():
        hf.model.embed_tokens.weight.mul_(3).add_(0.5)  # distinct mean/std to carry over
    hf.save_pretrained(tmp_path / "qwen")
    return hf, tmp_path / "qwen"


def test_twist_keeps_transformer_weights(text_qwen):
    hf, folder = text_qwen
    vocab = UnitVocab(n_units=500)
    model, meta = twist_init(folder, vocab, seed=3)
    assert model.config.vocab_size == 503 and model.config.rope_theta == 10000.0
    assert meta["kind"] == "twist" and meta["source_vocab_size"] == 300
    src = hf.state_dict()
    for name, t in model.state_dict().items():
        if "embed_tokens" in name or "lm_head" in name:
            assert t.shape == (503, 64)
            continue
        assert torch.equal(t, src[name]), name
    # "stats" init: row norms match the text LM's; seeded
    text_norm = hf.model.embed_tokens.weight.norm(dim=1).mean()
    unit_norm = model.model.embed_tokens.weight.norm(dim=1).mean()
    assert abs(unit_norm / text_norm - 1) < 0.1
    again, _ = twist_init(folder, vocab, seed=3)
    assert torch.equal(again.model.embed_tokens.weight, model.model.embed_tokens.weight)
    out = model(torch.randint(0, 503, (2, 10)), doc_ids=torch.tensor([[0] * 4 + [1] * 6] * 2))
    assert out.shape == (2, 10, 503) and torch.isfinite(out).all()


def test_init_rows_methods():
    torch.manual_seed(0)
    text = torch.randn(1000, 16) * torch.linspace(0.1, 2, 16) + 1.0
    gen = torch.Generator().manual_seed(0)
    stats = init_rows(text, 4000, "stats", gen)
    assert torch.allclose(stats.mean(0), text.mean(0), atol=0.1)
    assert torch.allclose(stats.std(0), text.std(0), rtol=0.1)
    mean = init_rows(text, 100, "mean", gen)
    assert (mean - text.mean(0)).abs().max() < 0.1 * text.std(0).max() * 5
    assert init_rows(text, 4000, "random", gen, std=0.02).std().item() == pytest.approx(0.02, rel=0.1)
    with pytest.raises(ValueError, match="embed_init must be"):
        init_rows(text, 1, "zeros", gen)


def test_twist_generic_family(tmp_path):
    from transformers import AutoModelForCausalLM, GPT2Config

    hf = AutoModelForCausalLM.from_config(GPT2Config(vocab_size=80, n_embd=32, n_layer=2,
                                                     n_head=4, n_positions=64))
    h0 = hf.transformer.h[0].attn.c_attn.weight.detach().clone()
    model, meta = twist_init(hf, UnitVocab(n_units=20), method="mean")
    assert model.config.family == "hf" and model.config.vocab_size == 23
    assert torch.equal(model.hf.transformer.h[0].attn.c_attn.weight, h0)
    assert model.hf.config.resid_pdrop == 0.0 and meta["source_model_type"] == "gpt2"
    assert model(torch.randint(0, 23, (1, 7))).shape == (1, 7, 23)


def test_random_init_shape():
    model, meta = random_init("tiny", UnitVocab(n_units=500), seed=1)
    assert model.config.vocab_size == 503 and meta == {
        "kind": "random", "shape": "tiny", "seed": 1, "rope_theta": 10000.0}


def test_slam_init_cli_resume_and_identity(text_qwen, tmp_path, caplog):
    _, folder = text_qwen
    ident = tmp_path / "units.json"
    ident.write_text(json.dumps({"encoder": "mel", "k": 500, "kmeans_hash": "abc"}))
    out = tmp_path / "init"
    args = ["init", str(folder), "--out", str(out), "--units-identity", str(ident), "--seed", "2"]
    assert main(args) == 0
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "config.yaml", "model.safetensors"]
    model, meta = load_checkpoint(out)
    assert meta["units"]["kmeans_hash"] == "abc" and meta["vocab"]["n_units"] == 500
    assert meta["init"]["config"]["seed"] == 2 and model.config.vocab_size == 503
    mtime = (out / "model.safetensors").stat().st_mtime_ns
    assert main(args) == 0  # same command: skipped
    assert (out / "model.safetensors").stat().st_mtime_ns == mtime
    assert main(args[:-1] + ["5"]) == 1  # other config: refused without --force
    assert main(args[:-1] + ["5", "--force"]) == 0
    assert load_checkpoint(out)[1]["init"]["seed"] == 5


def test_run_init_random_and_bad_identity(tmp_path):
    out = run_init(InitConfig(out=str(tmp_path / "r"), shape="tiny", units=100))
    model, meta = load_checkpoint(out)
    assert meta["init"]["kind"] == "random" and model.config.vocab_size == 103
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    with pytest.raises(ValueError, match="bad.json: expected a unit extractor identity"):
        run_init(InitConfig(out=str(tmp_path / "x"), shape="tiny", units_identity=str(bad)))
    assert not (tmp_path / "x").exists()


def test_keep_first_layers(text_qwen, tmp_path):
    hf, folder = text_qwen
    out = run_init(InitConfig(out=str(tmp_path / "init1"), text_lm=str(folder), units=20,
                              keep_layers=1))
    model, meta = load_checkpoint(out)
    assert model.config.n_layers == 1 and len(model.model.layers) == 1
    assert meta["init"]["kept_layers"] == 1 and meta["init"]["source_layers"] == 2
    src = hf.state_dict()
    for name, t in model.state_dict().items():
        if "embed_tokens" not in name and "lm_head" not in name:
            assert torch.equal(t, src[name]), name
    assert model(torch.randint(0, 23, (1, 8))).shape == (1, 8, 23)
    with pytest.raises(ValueError, match="keep_layers=5: the model has 2 blocks"):
        run_init(InitConfig(out=str(tmp_path / "init5"), text_lm=str(folder), units=20,
                            keep_layers=5))


def _confident_text_lm(tmp_path):
    """A tiny text LM whose final norm is large, like trained LMs: random rows -> big logits."""
    from transformers import AutoModelForCausalLM, Qwen2Config

    cfg = Qwen2Config(vocab_size=300, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True,
                      max_position_embeddings=128)
    torch.manual_seed(0)
    hf = AutoModelForCausalLM.from_config(cfg).eval()
    with torch.no_grad():
        hf.model.embed_tokens.weight.mul_(5).add_(0.2)
        hf.model.norm.weight.fill_(30.0)
    return hf


def _initial_loss(model, vocab, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(vocab.unit_offset, vocab.size, (4, 48), generator=g)
    x[:, 0] = vocab.bos_id
    with torch.no_grad():
        logits = model(x)
    return torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), x[:, 1:].flatten()).item()


def test_stats_rows_calibrated_to_a_near_uniform_start(tmp_path):
    import math

    hf, vocab = _confident_text_lm(tmp_path), UnitVocab(n_units=100)
    raw, _ = twist_init(hf, vocab, "stats", logit_std=0)  # uncalibrated: the 15-nat bug
    fixed, meta = twist_init(hf, vocab, "stats")
    assert _initial_loss(raw, vocab) > math.log(vocab.size) + 3
    assert _initial_loss(fixed, vocab, seed=1) < math.log(vocab.size) + 1
    assert 0 < meta["logit_scale"] < 0.5 and meta["logit_std"] == 1.0
    # the rows keep the text rows' statistics; only the final norm's scale changed
    assert torch.equal(fixed.model.embed_tokens.weight, raw.model.embed_tokens.weight)
    torch.testing.assert_close(fixed.model.norm.weight, 30.0 * torch.full((64,), meta["logit_scale"]))
    with torch.no_grad():
        x = torch.randint(3, 103, (2, 16))
        assert fixed(x).std(-1).mean() < raw(x).std(-1).mean() * 0.5


def test_keep_first_rows_like_slamkit(text_qwen):
    hf, folder = text_qwen
    model, meta = twist_init(folder, UnitVocab(n_units=100), "keep-first")
    assert meta["embed_init"] == "keep-first"
    assert torch.equal(model.model.embed_tokens.weight, hf.model.embed_tokens.weight[:103])
    with pytest.raises(ValueError, match="keep-first: the text LM has 300 rows"):
        twist_init(folder, UnitVocab(n_units=500), "keep-first")


def test_slam_init_from_a_slamkit_checkpoint(tmp_path):
    from slamkit_helpers import write_slamkit_ckpt

    write_slamkit_ckpt(tmp_path / "sk")
    theirs, _ = load_checkpoint(tmp_path / "sk")
    assert main(["init", str(tmp_path / "sk"), "--out", str(tmp_path / "init")]) == 0
    model, meta = load_checkpoint(tmp_path / "init")
    assert meta["vocab"] == UnitVocab(500).to_dict() and meta["init"]["kind"] == "slamkit-converted"
    e, t = model.model.embed_tokens.weight, theirs.model.embed_tokens.weight
    assert torch.equal(e[3:], t[2:]) and torch.equal(e[1], t[1]) and torch.equal(e[2], t[1])
    assert main(["init", str(tmp_path / "sk"), "--out", str(tmp_path / "i2"), "--units", "20"]) == 1
