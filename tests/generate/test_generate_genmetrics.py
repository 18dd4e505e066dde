"""Generative metrics: Auto-BLEU hand values, LM perplexity maths, ASR, end to end offline."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from slamlm.eval.asr import PocketSphinxASR, load_asr, normalize_text
from slamlm.eval.genmetrics import (
    TextLM,
    auto_bleu,
    corpus_auto_bleu,
    load_text_lm,
    paper_auto_bleu,
    perplexity,
    slamkit_auto_bleu,
    smollm2_gguf,
)
from slamlm.generate.runner import gen_metrics
from slamlm.io import read_jsonl

WORDS = ["<s>", "[UNK]", "the", "cat", "sat", "on", "mat", "a", "dog", "is", "and", "one",
         "this", "that", "it", "to", "of", "in", "he", "she", "was"]


@pytest.fixture(scope="module")
def tiny_text_lm(tmp_path_factory):
    """A tiny random Llama + word-level tokenizer saved as an HF folder."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    folder = tmp_path_factory.mktemp("textlm")
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", unk_token="[UNK]",
                            eos_token="<s>").save_pretrained(folder)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(WORDS), hidden_size=16, intermediate_size=32,
                      num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                      bos_token_id=0, eos_token_id=0)
    LlamaForCausalLM(cfg).save_pretrained(folder)
    return folder


def test_auto_bleu_hand_values():
    assert auto_bleu("the cat the cat sat") == 0.5  # the-cat twice of 4 bigrams
    assert auto_bleu("a b c d") == 0.0
    assert auto_bleu("a b a b a b") == 1.0
    assert auto_bleu("word") == 0.0 and auto_bleu("") == 0.0
    assert auto_bleu(["x", "y", "x", "y"]) == pytest.approx(2 / 3)
    assert corpus_auto_bleu(["the cat the cat sat", "a b c d", "single"]) == pytest.approx(25.0)
    assert corpus_auto_bleu([]) == 0.0
    # slamkit's: NLTK tokens (case, punctuation kept), no-bigram texts count 0, a fraction
    assert slamkit_auto_bleu("a b, a b") == 0.5  # a b , a b: a-b twice of 4 bigrams
    assert slamkit_auto_bleu("A b, a b") == 0.0  # case kept
    assert slamkit_auto_bleu("single") == 0.0
    assert paper_auto_bleu(["the cat the cat sat", "a b c d", "single"]) == pytest.approx(0.5 / 3)


def test_normalize_text():
    assert normalize_text("Hello, World!  It's <sil> [NOISE] 'fine'.") == "hello world it's fine"


def test_perplexity_matches_manual_nll(tiny_text_lm):
    lm = load_text_lm(str(tiny_text_lm))
    texts = ["the cat sat on the mat", "", "a dog"]
    nll = lm.nll(texts)
    assert nll[1] == (0.0, 0) and nll[0][1] == 6 and nll[2][1] == 2
    ids = torch.tensor([[0, 2, 3, 4, 5, 2, 6]])  # <s> the cat sat on the mat
    with torch.no_grad():
        logp = torch.log_softmax(lm.model(ids).logits[0, :-1], -1)
    manual = -float(logp.gather(1, ids[0, 1:, None]).sum())
    assert nll[0][0] == pytest.approx(manual, rel=1e-5)
    res = perplexity(lm, texts)
    assert res["n_scored"] == 2
    # the paper's (slamkit's): exp of the mean over transcripts of the mean token NLL
    assert res["genppl"] == pytest.approx(math.exp((nll[0][0] / 6 + nll[2][0] / 2) / 2), rel=1e-6)
    assert res["genppl_token_weighted"] == pytest.approx(math.exp((nll[0][0] + nll[2][0]) / 8),
                                                         rel=1e-6)
    assert 1 < res["genppl"] < 10 * len(WORDS)
    assert math.isnan(perplexity(lm, ["", ""])["genppl"])


def test_construction_errors_offline(tmp_path):
    with pytest.raises(RuntimeError, match="could not be loaded.*pocketsphinx"):
        load_asr(f"whisper:{tmp_path / 'no-whisper'}")
    with pytest.raises(RuntimeError, match="text LM"):
        TextLM(tmp_path / "no-lm")
    with pytest.raises(ValueError, match="unknown ASR"):
        load_asr("kaldi")


def test_pocketsphinx_transcribes_real_speech(peer_example_dir):
    from slamlm.audio import load_audio

    wav = load_audio(peer_example_dir / "audio1.flac")[: 3 * 16000]
    text = PocketSphinxASR(fast=True).transcribe([wav, np.zeros(8000, np.float32)])
    assert "chapter" in text[0].split()  # the recording starts "chapter one ..."
    assert len(text) == 2 and isinstance(text[1], str)
    # speech: the same text per clip whatever came before it, and with two processes
    clips = [wav[: 2 * 16000], wav, wav[16000:]]
    one = PocketSphinxASR(fast=True).transcribe(clips)
    assert one[1] == text[0] and PocketSphinxASR(fast=True).transcribe(clips[::-1]) == one[::-1]
    assert PocketSphinxASR(fast=True, workers=2).transcribe(clips) == one
    # the demo's cap on active HMMs per frame: still hears the recording, same text in workers
    capped = load_asr("pocketsphinx:fast", max_hmm=3000)
    assert capped.name == "pocketsphinx:fast (max 3000 HMMs/frame)"
    heard = capped.transcribe(clips)
    assert "chapter" in heard[1].split()
    assert load_asr("pocketsphinx:fast", workers=2, max_hmm=3000).transcribe(clips) == heard


@pytest.mark.slow
def test_gen_metrics_end_to_end_offline(mel_checkpoint, tiny_text_lm, tmp_path):
    ckpt, prompt, _ = mel_checkpoint
    res = gen_metrics(ckpt, [prompt, prompt], asr="pocketsphinx:fast", lm=str(tiny_text_lm),
                      out=tmp_path / "gm", prompt_seconds=1.5, vocoder="mel",
                      sampling={"max_new_tokens": 10})
    assert res["n"] == 2 and len(res["transcripts"]) == 2
    assert {t["id"] for t in res["transcripts"]} == {"prompt", "prompt_2"}
    assert 0.0 <= res["auto_bleu"] <= 100.0
    assert res["n_empty"] < 2 and math.isfinite(res["genppl"]) and res["genppl"] > 1
    saved = json.loads((tmp_path / "gm" / "genmetrics.json").read_text())
    assert saved["genppl"] == pytest.approx(res["genppl"]) and saved["asr"] == "pocketsphinx:fast"
    recs = list(read_jsonl(tmp_path / "gm" / "generations.jsonl"))
    assert [r["transcript"] for r in recs] == [t["text"] for t in res["transcripts"]]


def test_smollm2_gguf_is_found():
    path = smollm2_gguf()
    assert path.suffix == ".gguf" and path.stat().st_size > 50_000_000


def _smollm2_cached() -> bool:
    import os
    from pathlib import Path

    try:
        gguf = smollm2_gguf()
    except FileNotFoundError:
        return False
    cache = Path(os.environ.get("SLAMLM_CACHE", Path.home() / ".cache" / "slamlm"))
    return (cache / f"hf-{gguf.stem}" / "config.json").is_file()


@pytest.mark.slow
@pytest.mark.skipif(not _smollm2_cached(), reason="SmolLM2 not converted yet (~1-2 min once): "
                    "python -c 'from slamlm.eval.genmetrics import smollm2_folder; smollm2_folder()'")
def test_smollm2_scores_fluent_text_lower():
    lm = load_text_lm("smollm2")
    fluent = perplexity(lm, ["once upon a time there was a little girl who lived in a village"])
    shuffled = perplexity(lm, ["girl a little there upon time was once village in lived who a"])
    assert 1 < fluent["genppl"] < 200 < shuffled["genppl"]
