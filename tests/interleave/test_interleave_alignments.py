"""slam pack-interleaved --alignments: aligned_text records (slam align-words output) joined
with the units records by id; ids that do not join are reported, none joining is an error."""

from __future__ import annotations

import json

import numpy as np
import pytest
from interleave_helpers import build_text_lm, write_corpus

from slamlm.cli import main
from slamlm.config import ConfigError
from slamlm.data.shards import TokenShard
from slamlm.interleave.model import interleaved_init, save_interleaved
from slamlm.interleave.pack import InterleavePackConfig, run_pack_interleaved
from slamlm.io import read_jsonl, write_jsonl
from slamlm.words.aligned import make_record


@pytest.fixture(scope="module")
def init_ckpt(tmp_path_factory):
    d = tmp_path_factory.mktemp("il")
    model, meta = interleaved_init(build_text_lm(d / "lm"), n_units=32)
    return save_interleaved(model, meta, d / "init")


def _tokens(folder):
    out = []
    for split in ("train", "val"):
        s = TokenShard.open(folder, split)
        out.append([s.doc(i).tolist() for i in range(s.n_docs)])
    return out


def test_alignments_pack_like_the_manifest(tmp_path, init_ckpt):
    manifest, units = write_corpus(tmp_path, n=30)
    man = list(read_jsonl(manifest))
    write_jsonl(tmp_path / "words" / "aligned_text.jsonl",
                [make_record(r["id"], r["words"]) for r in man])
    kw = dict(units=str(units), init=str(init_ckpt), mix="interleaved=0.6,speech=0.2,text=0.2",
              mean_words=4, val_fraction=0.1, context=64)
    a = run_pack_interleaved(InterleavePackConfig(manifest=str(manifest), out=str(tmp_path / "m"),
                                                  **kw))
    b = run_pack_interleaved(InterleavePackConfig(alignments=str(tmp_path / "words"),
                                                  out=str(tmp_path / "a"), **kw))
    assert _tokens(a) == _tokens(b)
    ia, ib = (json.loads((p / "index.json").read_text()) for p in (a, b))
    assert ia["counts"] == ib["counts"] and ib["n_failures"] == 0
    with pytest.raises(ConfigError, match="not both"):
        run_pack_interleaved(InterleavePackConfig(manifest=str(manifest), alignments=str(
            tmp_path / "words"), out=str(tmp_path / "x"), **kw))


def test_alignment_ids_join_by_file_name_and_misses_are_reported(tmp_path, init_ckpt):
    manifest, units = write_corpus(tmp_path, n=12)
    man = list(read_jsonl(manifest))
    recs = [make_record(r["id"] if i % 2 else r["id"].split("/")[-1], r["words"])
            for i, r in enumerate(man)]  # half the ids without their folder: still join
    recs.append(make_record("story/ghost", [["the", 0.0, 0.2]]))
    write_jsonl(tmp_path / "al.jsonl", recs)
    rc = main(["pack-interleaved", str(units), "--alignments", str(tmp_path / "al.jsonl"),
               "--out", str(tmp_path / "tok"), "--init", str(init_ckpt), "--mix", "speech=1"])
    assert rc == 0
    index = json.loads((tmp_path / "tok" / "index.json").read_text())
    assert index["counts"]["speech"]["docs"] == 12 and index["n_failures"] == 1
    (fail,) = read_jsonl(tmp_path / "tok_failures.jsonl")
    assert fail["id"] == "story/ghost"
    assert "al.jsonl line 13: alignment id 'story/ghost' has no units record" in fail["reason"]
    shard = TokenShard.open(tmp_path / "tok", "train")
    assert np.all(shard.vocab.is_unit(shard.doc(0)[2:-1]))  # [bos] <speech> units... [eos]


def test_no_alignment_id_joins_is_an_error(tmp_path, init_ckpt, capsys):
    _, units = write_corpus(tmp_path, n=4)
    write_jsonl(tmp_path / "al.jsonl", [make_record(f"other/{i}", [["a", 0, 0.1]])
                                        for i in range(3)])
    rc = main(["pack-interleaved", str(units), "--alignments", str(tmp_path / "al.jsonl"),
               "--out", str(tmp_path / "tok"), "--init", str(init_ckpt)])
    err = capsys.readouterr().err
    assert rc == 1
    assert "al.jsonl: none of its 3 ids joins the units ids (alignments have 'other/0', " \
           "units have 'story/00000'" in err
    (tmp_path / "bad.jsonl").write_text('{"id": "story/00000", "aligned_text": [["a", 2, 1]]}\n')
    rc = main(["pack-interleaved", str(units), "--alignments", str(tmp_path / "bad.jsonl"),
               "--out", str(tmp_path / "tok"), "--init", str(init_ckpt)])
    assert rc == 1 and "bad.jsonl line 1: word 1 ('a') has start 2.0 / end 1.0" in \
        capsys.readouterr().err
