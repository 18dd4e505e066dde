"""WebDataset tar shards, written with ``tarfile`` and cross-read with ``webdataset``."""

from __future__ import annotations

import io
import json
import tarfile

import pytest
from corpora_helpers import CLIPS, TEXTS, extract, flac_bytes, same_units

from slamlm.corpora import list_items
from slamlm.corpora.tars import split_name


def add(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tf.addfile(info, io.BytesIO(data))


def write_shards(d, bad: bool = False):
    d.mkdir(exist_ok=True)
    keys = list(CLIPS)
    for s, ks in enumerate([keys[:2], keys[2:]]):
        with tarfile.open(d / f"train-{s:03d}.tar", "w") as tf:
            for k in ks:
                add(tf, f"{k}.flac" if k != "utt-b" else f"{k}.wav",
                    flac_bytes(CLIPS[k], fmt="FLAC" if k != "utt-b" else "WAV"))
                if k == "utt-a":
                    add(tf, f"{k}.txt", TEXTS[k].encode())
                else:
                    add(tf, f"{k}.json", json.dumps({"text": TEXTS[k], "spk": 1}).encode())
            if bad and s == 1:
                add(tf, "junk.flac", b"\x00" * 100)
                add(tf, "textonly.txt", b"no audio here")


def test_tar_shards_match_plain_files(tmp_path, kmeans8, plain_units):
    write_shards(tmp_path / "shards", bad=True)
    pattern = str(tmp_path / "shards" / "train-{000..001}.tar")
    items = list_items(pattern)
    assert [it.id for it in items] == ["utt-a", "utt-b", "utt-c", "junk", "textonly"]
    assert items[2].source.endswith("train-001.tar:utt-c.flac")
    assert [it.id for it in list_items(tmp_path / "shards")] == [it.id for it in items]
    got = extract(pattern, tmp_path / "out", kmeans8)
    assert sorted(got) == sorted(CLIPS)
    same_units(got, plain_units)
    assert {k: r["text"] for k, r in got.items()} == TEXTS
    fails = {json.loads(x)["id"]: json.loads(x) for x in
             (tmp_path / "out" / "failures.jsonl").read_text().splitlines()}
    assert fails["junk"]["path"].endswith("train-001.tar:junk.flac")
    assert "no audio member" in fails["textonly"]["reason"]


def test_keys_agree_with_webdataset(tmp_path):
    wds = pytest.importorskip("webdataset")
    write_shards(tmp_path / "shards")
    urls = [str(p) for p in sorted((tmp_path / "shards").glob("*.tar"))]
    theirs = [s["__key__"] for s in wds.WebDataset(urls, shardshuffle=False)]
    assert [it.id for it in list_items(tmp_path / "shards")] == theirs
    assert split_name("dir/a.b.flac") == ("dir/a", "b.flac")


def test_tar_errors_name_the_shard(tmp_path):
    from slamlm.corpora import CorpusError

    (tmp_path / "x.tar").write_bytes(b"not a tar" * 100)
    with pytest.raises(CorpusError, match="x.tar: not a readable tar"):
        list_items(tmp_path / "x.tar")
    write_shards(tmp_path / "s")
    with pytest.raises(CorpusError, match=r"1 of 2 shards do not exist \(first: .*train-002.tar\)"):
        list_items(str(tmp_path / "s" / "train-{001..002}.tar"))
    (tmp_path / "z.tar.gz").write_bytes(b"")
    with pytest.raises(CorpusError, match="z.tar.gz: compressed tar; give plain .tar"):
        list_items(tmp_path / "z.tar.gz")
