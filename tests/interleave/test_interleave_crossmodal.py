"""Cross-modal StoryCloze scoring: sequences, restricted renormalisation, runner."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from interleave_helpers import lexicon, speak

from slamlm.eval.crossmodal import (
    Story,
    build_sequence,
    ending_logprobs,
    evaluate_crossmodal,
    pairs_from_benchmark,
    read_crossmodal,
)
from slamlm.eval.likelihood import token_logprobs
from slamlm.io import write_jsonl
from slamlm.model import SpeechLM, named_shape
from slamlm.vocab import UnitVocab

VOCAB = UnitVocab(n_units=32, n_text=30)
WORD_IDS = {w: i for i, w in enumerate("the big cat sat on mat dog ran under tree".split())}


def tokenize(s: str) -> list[int]:
    return [WORD_IDS[w] for w in s.split()]


def _story(text: str, seed: int = 0) -> Story:
    units, durs, words = speak(text.split(), lexicon(), np.random.default_rng(seed))
    return Story(words, units, durs)


def test_build_sequence_directions():
    s = _story("the big cat sat on the mat")
    lex = lexicon()
    toks, k = build_sequence(s, 3, "text>speech", tokenize, VOCAB)
    t0 = VOCAB.text_offset
    assert toks[:6] == [1, VOCAB.text_marker_id, t0 + 0, t0 + 1, t0 + 2, VOCAB.speech_marker_id]
    ending_units = list(s.units[-k:])
    assert toks[-k:] == [u + 3 for u in ending_units]
    # the ending's units hold the words' pronunciations in order (pauses = unit 0 aside)
    got = [u for u in ending_units if u != 0]
    want = [u for w in "sat on the mat".split() for u in lex[w]]
    assert len(got) <= len(want) and set(got) <= set(want)
    toks, k = build_sequence(s, 3, "speech>text", tokenize, VOCAB)
    assert toks[1] == VOCAB.speech_marker_id and toks[-k - 1] == VOCAB.text_marker_id
    assert [t - t0 for t in toks[-k:]] == tokenize("sat on the mat")
    toks, k = build_sequence(s, 3, "text>text", tokenize, VOCAB)
    text = "the big cat sat on the mat"
    assert toks == [1, VOCAB.text_marker_id] + [t0 + i for i in tokenize(text)]
    assert k == len(text.split()) - 3
    with pytest.raises(ValueError, match="direction"):
        build_sequence(s, 3, "text>video", tokenize, VOCAB)


def test_ending_logprobs_full_matches_token_logprobs_and_restricted_normalises():
    torch.manual_seed(0)
    model = SpeechLM(named_shape("tiny", vocab_size=VOCAB.size)).eval()
    rng = np.random.default_rng(0)
    seqs = [rng.integers(3, VOCAB.size, size=n).tolist() for n in (9, 14, 6)]
    full = ending_logprobs(model, seqs, [4, 5, 2], batch_size=2)
    ref = token_logprobs(model, [np.array(s) for s in seqs])
    for f, r, k in zip(full, ref, [4, 5, 2]):
        np.testing.assert_allclose(f, r[-k:], atol=1e-4)
    # restricted to units: the log-probs of all unit tokens at a position sum to 1
    lo, hi = VOCAB.unit_offset, VOCAB.unit_offset + VOCAB.n_units
    base = [1, VOCAB.text_marker_id, VOCAB.text_offset + 2, VOCAB.speech_marker_id]
    cands = [base + [u] for u in range(lo, hi)]
    lps = ending_logprobs(model, cands, [1] * len(cands), restrict=(lo, hi))
    assert np.isclose(np.exp([lp[0] for lp in lps]).sum(), 1.0, atol=1e-5)
    full_lps = ending_logprobs(model, cands, [1] * len(cands))
    assert all(r[0] > f[0] for r, f in zip(lps, full_lps))  # renormalised is larger


def test_evaluate_and_files(tmp_path):
    torch.manual_seed(0)
    model = SpeechLM(named_shape("tiny", vocab_size=VOCAB.size)).eval()
    pos = _story("the big cat sat on the mat", 1)
    neg = _story("the big cat ran under the tree", 2)
    # same prompt audio on both sides (as in a real benchmark: one context recording)
    pairs = [{"id": "0", "positive": pos, "negative": neg}]
    res = evaluate_crossmodal(model, VOCAB, tokenize, pairs)
    for d in ("text>speech", "speech>text", "text>text", "speech>speech"):
        for norm in ("full", "restricted"):
            assert res[d][norm]["acc_mean"] in (0.0, 0.5, 1.0)
            assert res[d][norm]["logp_pos_mean"] < 0
    # restricted text>text scores >= full (mass on other modalities no longer counts)
    assert res["text>text"]["restricted"]["logp_pos_mean"] > res["text>text"]["full"]["logp_pos_mean"]
    # from a StoryCloze pairs.jsonl + words manifest + units folder
    (tmp_path / "sSC").mkdir()
    write_jsonl(tmp_path / "sSC" / "pairs.jsonl",
                [{"id": "0", "positive": "0_correct.wav", "negative": "0_wrong.wav"}])
    write_jsonl(tmp_path / "words.jsonl", [
        {"id": "sSC/0_correct", "words": pos.words}, {"id": "sSC/0_wrong", "words": neg.words}])
    write_jsonl(tmp_path / "units" / "u.jsonl", [
        {"id": "sSC/0_correct", "units": pos.units, "durations": pos.durations},
        {"id": "sSC/0_wrong", "units": neg.units, "durations": neg.durations}])
    out = pairs_from_benchmark(tmp_path / "sSC" / "pairs.jsonl", tmp_path / "words.jsonl",
                               tmp_path / "units", tmp_path / "cm.jsonl")
    back = read_crossmodal(out)
    assert back[0]["positive"] == pos and back[0]["negative"] == neg
    assert json.loads(out.read_text().splitlines()[0])["id"] == "0"
    write_jsonl(tmp_path / "bad.jsonl", [{"id": "x", "positive": {"words": []}}])
    with pytest.raises(ValueError, match="bad.jsonl line 1"):
        read_crossmodal(tmp_path / "bad.jsonl")
