"""Interleaved init from a text LM: text behaviour preserved, rows initialised as documented."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from interleave_helpers import build_text_lm

from slamlm.interleave.model import interleaved_init, load_interleaved, save_interleaved
from slamlm.vocab import UnitVocab


@pytest.fixture(scope="module")
def tiny_text_lm(tmp_path_factory):
    return build_text_lm(tmp_path_factory.mktemp("text_lm"))


@pytest.mark.parametrize("family,tie", [("llama", True), ("qwen2", False)])
def test_interleaved_init_keeps_text_lm(tmp_path, family, tie):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src = build_text_lm(tmp_path / "lm", family=family, tie=tie)
    hf = AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(src)
    model, meta = interleaved_init(src, n_units=20)
    vocab = UnitVocab.from_dict(meta["vocab"])
    n_text = hf.config.vocab_size
    assert vocab.n_text == n_text and vocab.size == 3 + 20 + n_text + 2
    assert model.config.vocab_size == vocab.size
    assert model.config.rope_theta == (50000.0 if family == "llama" else 10000.0)
    emb = model.model.embed_tokens.weight.detach()
    old = hf.get_input_embeddings().weight.detach()
    assert torch.equal(emb[vocab.text_offset:vocab.text_offset + n_text], old)
    assert torch.allclose(emb[vocab.text_marker_id], old.mean(0))
    assert torch.allclose(emb[vocab.speech_marker_id], old.mean(0))
    assert torch.equal(emb[vocab.bos_id], old[tok.bos_token_id])
    units = emb[3:23]
    assert not torch.allclose(units[0], units[1])
    assert torch.allclose(units.mean(0), old.mean(0), atol=3 * old.std(0).max().item())
    # same next-token distribution over text tokens as the text LM
    ids = tok.encode("the cat sat on the mat", add_special_tokens=False)
    with torch.no_grad():
        ref = hf(torch.tensor([ids])).logits[0]
        ours = model(torch.tensor([ids]) + vocab.text_offset)[0]
    ours_text = ours[:, vocab.text_offset:vocab.text_offset + n_text]
    assert torch.allclose(ours_text, ref, atol=1e-4)


def test_save_and_load_interleaved_checkpoint(tiny_text_lm, tmp_path):
    model, meta = interleaved_init(tiny_text_lm, n_units=8, seed=3)
    out = save_interleaved(model, meta, tmp_path / "init")
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["text_tokenizer"] == "text_tokenizer" and cfg["vocab"]["n_text"] > 0
    assert cfg["tokenizers"]["units"]["n_units"] == 8
    model2, meta2, tok = load_interleaved(out)
    assert tok.encode(" the cat", add_special_tokens=False) == [3, 5]
    x = torch.tensor([[1, 4, 5, 35, 40]])
    with torch.no_grad():
        assert torch.allclose(model(x), model2(x), atol=1e-5)
    assert np.isclose(float(model2.model.embed_tokens.weight.detach().sum()),
                      float(model.model.embed_tokens.weight.detach().sum()), rtol=1e-5)


def test_interleaved_init_rejects_other_families(tmp_path):
    from transformers import GPT2Config, GPT2LMHeadModel

    GPT2LMHeadModel(GPT2Config(n_embd=16, n_layer=1, n_head=2, vocab_size=50)).save_pretrained(
        tmp_path / "gpt2")
    build_text_lm(tmp_path / "tok")  # tokenizer files only are needed next to it
    for f in (tmp_path / "tok").glob("tok*"):
        (tmp_path / "gpt2" / f.name).write_bytes(f.read_bytes())
    with pytest.raises(ValueError, match="Llama/Qwen2"):
        interleaved_init(tmp_path / "gpt2", n_units=4)


def test_init_interleaved_cli(tiny_text_lm, tmp_path):
    from slamlm.cli import main

    assert main(["init-interleaved", str(tiny_text_lm), "--out", str(tmp_path / "il"),
                 "--n-units", "6", "--rope-theta", "10000"]) == 0
    model, meta, tok = load_interleaved(tmp_path / "il")
    assert meta["vocab"]["n_units"] == 6 and model.config.rope_theta == 10000.0
    assert (tmp_path / "il" / "text_tokenizer" / "tokenizer.json").is_file()
    assert main(["init-interleaved", str(tmp_path / "missing"), "--out", str(tmp_path / "x")]) == 1
