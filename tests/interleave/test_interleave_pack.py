"""slam pack-interleaved: mixed interleaved/speech/text shards in the slam pack format."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from interleave_helpers import build_text_lm, write_corpus

from slamlm.cli import main
from slamlm.config import ConfigError
from slamlm.data.shards import TokenShard
from slamlm.interleave.model import interleaved_init, load_text_tokenizer, save_interleaved
from slamlm.interleave.pack import (
    InterleavePackConfig,
    _rng_for,
    make_document,
    parse_mix,
    run_pack_interleaved,
)
from slamlm.interleave.spans import strip_markers
from slamlm.io import read_jsonl, write_jsonl
from slamlm.vocab import UnitVocab


@pytest.fixture(scope="module")
def init_ckpt(tmp_path_factory):
    d = tmp_path_factory.mktemp("il")
    model, meta = interleaved_init(build_text_lm(d / "lm"), n_units=32)
    return save_interleaved(model, meta, d / "init")


def _is_subsequence(small: list[int], big: list[int]) -> bool:
    it = iter(big)
    return all(x in it for x in small)


def _matches_a_record(kind, text, unit_ids, man, units_by_id, tok) -> bool:
    """The document is the speech / the text / an interleaving of one manifest record."""
    for rid, rec in man.items():
        full_text = tok.encode(" " + rec["text"], add_special_tokens=False)
        full_units = units_by_id[rid]["units"]
        if kind == "speech" and unit_ids == full_units:
            return True
        if kind == "text" and text == full_text:
            return True
        if (kind == "interleaved" and _is_subsequence(text, full_text)
                and _is_subsequence(unit_ids, full_units)
                and len(text) < len(full_text) + 1 and (text or unit_ids)):
            return True
    return False


def test_parse_mix():
    assert parse_mix("interleaved=0.6,speech=0.2,text=0.2") == pytest.approx(
        {"speech": 0.2, "text": 0.2, "interleaved": 0.6})
    # the default is slamkit's mix (config/train_inter_scale.yaml): text/interleaved/speech
    assert parse_mix(InterleavePackConfig().mix) == pytest.approx(
        {"text": 0.202, "interleaved": 0.543, "speech": 0.254}, abs=1e-3)
    assert InterleavePackConfig().p_speech == 0.3 and InterleavePackConfig().mean_words == 10
    with pytest.raises(ConfigError, match="unknown kind 'video'"):
        parse_mix("video=1")
    with pytest.raises(ConfigError, match="sum to 0"):
        parse_mix("text=0")


def test_interleaved_documents_get_the_speech_quota():
    """make_document(interleaved): >= ceil(0.3 n) of the n words are speech in every document
    (one unit per word here, so speech words = unit tokens)."""
    vocab = UnitVocab(n_units=8, n_text=50)
    cfg = InterleavePackConfig()
    for n in range(1, 90):
        words = [[f"w{i}", i * 0.04, (i + 1) * 0.04] for i in range(n)]
        units, dur = np.arange(n) % 8, np.ones(n, dtype=np.int64)
        doc = make_document("interleaved", words, units, dur, lambda s: [len(w) for w in s.split()],
                            vocab, _rng_for(0, f"doc{n}"), cfg)
        assert doc[0] == vocab.bos_id and doc[-1] == vocab.eos_id
        n_speech = int(vocab.is_unit(np.asarray(doc)).sum())
        assert n_speech >= math.ceil(0.3 * n)


def test_pack_interleaved_streams(tmp_path, init_ckpt):
    manifest, units = write_corpus(tmp_path, n=120)
    cfg = InterleavePackConfig(units=str(units), manifest=str(manifest), out=str(tmp_path / "tok"),
                               init=str(init_ckpt), mix="interleaved=0.6,speech=0.2,text=0.2",
                               mean_words=4, val_fraction=0.1, context=64)
    out = run_pack_interleaved(cfg)
    index = json.loads((out / "index.json").read_text())
    assert index["modalities"] == ["speech", "text", "interleaved"]
    counts = {k: v["docs"] for k, v in index["counts"].items()}
    assert sum(counts.values()) == 120
    assert 50 <= counts["interleaved"] <= 95 and counts["speech"] >= 10 and counts["text"] >= 10
    train, val = TokenShard.open(out, "train"), TokenShard.open(out, "val")
    assert val.n_docs >= 1 and train.vocab.n_text > 0
    man = {r["id"]: r for r in read_jsonl(manifest)}
    units_by_id = {r["id"]: r for r in read_jsonl(units / "part.jsonl")}
    # whole documents (pieces of <= 64 tokens) round-trip to their modality
    tok = load_text_tokenizer(init_ckpt)
    seen = {"speech": 0, "text": 0, "interleaved": 0}
    mixed = 0
    for shard in (train, val):
        mods = np.load(out / index["splits"][shard.split]["modality"])
        assert mods.shape == (shard.n_docs,) and shard.doc_lengths.max() <= 64
        whole = []
        for i in range(shard.n_docs):
            whole.extend(shard.doc(i).tolist())
            if whole[-1] != shard.vocab.eos_id:
                continue
            kind = index["modalities"][int(mods[i])]
            text, unit_ids = strip_markers(whole, shard.vocab)
            seen[kind] += 1
            mixed += kind == "interleaved" and bool(text) and bool(unit_ids)
            assert whole[0] == shard.vocab.bos_id
            assert _matches_a_record(kind, text, unit_ids, man, units_by_id, tok)
            if kind == "speech":
                assert not text
            if kind == "text":
                assert not unit_ids
            whole = []
    assert seen == counts
    assert mixed >= counts["interleaved"] // 2  # most 21-word stories switch modality
    # resume: nothing re-done; a changed setting re-packs
    mtime = (out / "index.json").stat().st_mtime_ns
    run_pack_interleaved(cfg)
    assert (out / "index.json").stat().st_mtime_ns == mtime


def test_pack_interleaved_cli_and_failures(tmp_path, init_ckpt):
    manifest, units = write_corpus(tmp_path, n=20)
    recs = list(read_jsonl(manifest))
    recs.append({"id": "story/missing", "text": "the cat", "words": [["the", 0, 0.1]]})
    recs.append({"id": "story/nowords", "text": "x"})
    write_jsonl(manifest, recs)
    rc = main(["pack-interleaved", str(units), "--manifest", str(manifest), "--out",
               str(tmp_path / "tok"), "--init", str(init_ckpt), "--mix", "speech=1"])
    assert rc == 0
    index = json.loads((tmp_path / "tok" / "index.json").read_text())
    assert index["counts"]["speech"]["docs"] == 20 and index["n_failures"] == 2
    fails = {r["id"]: r["reason"] for r in read_jsonl(tmp_path / "tok_failures.jsonl")}
    assert "no units with this id" in fails["story/missing"]
    assert "no word alignments" in fails["story/nowords"]
    rc = main(["pack-interleaved", str(units), "--manifest", str(manifest), "--out",
               str(tmp_path / "tok2"), "--init", str(init_ckpt), "--strict"])
    assert rc == 1
