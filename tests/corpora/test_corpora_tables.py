"""HF datasets saved to disk and parquet files, written with ``datasets`` itself."""

from __future__ import annotations

import json

import pytest
from corpora_helpers import CLIPS, TEXTS, extract, flac_bytes, same_units

datasets = pytest.importorskip("datasets")
pytest.importorskip("pyarrow")

from slamlm.corpora import CorpusError, list_items, list_texts  # noqa: E402


def audio_dataset(with_path: bool = True, bad: bool = False):
    """sTinyStories' columns: audio (Audio), text, aligned_text (word list), split_sentence."""
    keys = list(CLIPS)
    audio = [{"bytes": flac_bytes(CLIPS[k]), "path": f"wavs/{k}.flac" if with_path else None}
             for k in keys]
    texts = [TEXTS[k] for k in keys]
    if bad:  # an undecodable cell and an empty one
        audio += [{"bytes": b"not audio at all", "path": "wavs/junk.flac" if with_path else None},
                  {"bytes": None, "path": None}]
        texts += ["junk", "nothing"]
    aligned = [[{"word": w, "start_time": 0.1 * i, "end_time": 0.1 * i + 0.1}
                for i, w in enumerate(t.split())] for t in texts]
    return datasets.Dataset.from_dict({
        "audio": audio, "text": texts, "aligned_text": aligned,
        "split_sentence": [False] * len(texts)}).cast_column("audio", datasets.Audio())


def test_hf_save_to_disk_matches_plain_files(tmp_path, kmeans8, plain_units):
    ds = audio_dataset()
    ds.save_to_disk(str(tmp_path / "ds"))
    items = list_items(tmp_path / "ds")
    assert [it.id for it in items] == list(CLIPS)  # from audio.path (datasets keeps its name)
    assert all(it.path is None and it.data is None for it in items)  # nothing decoded yet
    got = extract(tmp_path / "ds", tmp_path / "out", kmeans8)
    assert sorted(got) == sorted(CLIPS)
    same_units(got, plain_units)
    assert {r["id"]: r["text"] for r in got.values()} == TEXTS


def test_hf_dataset_dict_needs_a_split(tmp_path, kmeans8, plain_units):
    dd = datasets.DatasetDict({"train": audio_dataset(with_path=False),
                               "test": audio_dataset(with_path=False).select([0])})
    dd.save_to_disk(str(tmp_path / "dd"))
    with pytest.raises(CorpusError, match=r"splits \['train', 'test'\].*--split"):
        list_items(tmp_path / "dd")
    got = extract(tmp_path / "dd", tmp_path / "out", kmeans8, split="test")
    assert list(got) == ["dd/test/0"]  # no id column, no audio path: <name>/<split>/<row>
    same_units(got, plain_units, key=lambda rid: "utt-a")
    with pytest.raises(CorpusError, match="no split 'dev'"):
        list_items(tmp_path / "dd", split="dev")


def test_parquet_folder_bad_rows_go_to_failures_and_resume(tmp_path, kmeans8, plain_units):
    (tmp_path / "pq").mkdir()
    audio_dataset(with_path=False, bad=True).to_parquet(str(tmp_path / "pq" / "part-0.parquet"))
    audio_dataset(with_path=False).to_parquet(str(tmp_path / "pq" / "part-1.parquet"))
    items = list_items(tmp_path / "pq")
    assert [it.id for it in items][:5] == [f"part-0/{r}" for r in range(5)]
    assert len(items) == 8
    got = extract(tmp_path / "pq", tmp_path / "out", kmeans8)
    assert sorted(got) == sorted([f"part-0/{r}" for r in range(3)]
                                 + [f"part-1/{r}" for r in range(3)])
    same_units(got, plain_units, key=lambda rid: list(CLIPS)[int(rid.split("/")[1])])
    # text from 'text' (before aligned_text)
    assert got["part-1/1"]["text"] == TEXTS["utt-b"]
    fails = {json.loads(x)["id"]: json.loads(x) for x in
             (tmp_path / "out" / "failures.jsonl").read_text().splitlines()}
    assert sorted(fails) == ["part-0/3", "part-0/4"]
    assert fails["part-0/3"]["path"].endswith("part-0.parquet row 3")
    assert "not readable audio" in fails["part-0/3"]["reason"]
    assert "missing audio" in fails["part-0/4"]["reason"]
    before = (tmp_path / "out" / "units.jsonl").read_bytes()
    extract(tmp_path / "pq", tmp_path / "out", kmeans8)  # resume: all done or failed already
    assert (tmp_path / "out" / "units.jsonl").read_bytes() == before


def test_parquet_columns_chosen_and_errors_name_them(tmp_path):
    ds = audio_dataset().add_column("id", ["x1", "x2", "x3"]).remove_columns(["text"])
    ds.to_parquet(str(tmp_path / "a.parquet"))
    items = list_items(tmp_path / "a.parquet")
    assert [it.id for it in items] == ["x1", "x2", "x3"]  # 'id' beats audio.path
    assert items[1].text == TEXTS["utt-b"]  # joined from sTinyStories' aligned_text words
    assert [it.id for it in list_items(tmp_path / "a.parquet", id_column="row")] == \
        ["a/0", "a/1", "a/2"]
    # a table without audio names the columns it has
    datasets.Dataset.from_dict({"text": ["a"], "n": [1]}).to_parquet(str(tmp_path / "t.parquet"))
    with pytest.raises(CorpusError, match=r"t.parquet: no audio column.*text \(string\), n "
                                          r"\(int64\).*--audio-column"):
        list_items(tmp_path / "t.parquet")
    # two Audio columns (SpokenSwag's chosen/rejected): ask which
    raw = audio_dataset().cast_column("audio", datasets.Audio(decode=False))["audio"]
    two = audio_dataset().add_column("other", list(raw)).cast_column("other", datasets.Audio())
    two.to_parquet(str(tmp_path / "two.parquet"))
    with pytest.raises(CorpusError, match=r"several audio columns \['audio', 'other'\]"):
        list_items(tmp_path / "two.parquet")
    assert len(list_items(tmp_path / "two.parquet", audio_column="other")) == 3
    with pytest.raises(CorpusError, match="no column 'speech'.*audio"):
        list_items(tmp_path / "two.parquet", audio_column="speech")
    # ids clash across two files: both sources named
    (tmp_path / "dup").mkdir()
    ds.to_parquet(str(tmp_path / "dup" / "b.parquet"))
    ds.to_parquet(str(tmp_path / "dup" / "c.parquet"))
    with pytest.raises(CorpusError, match=r"id 'x1' is used by both .*b.parquet row 0 and "
                                          r".*c.parquet row 0"):
        list_items(tmp_path / "dup")
    # text-only tables feed `slam synth --text`
    assert list_texts(tmp_path / "t.parquet") == [("t/0", "a")]


def test_decoded_array_column(tmp_path, kmeans8, plain_units):
    import numpy as np

    ds = datasets.Dataset.from_dict({"speech": [{"array": CLIPS["utt-b"].astype(np.float64),
                                                 "sampling_rate": 16000}], "id": ["b"]})
    ds.to_parquet(str(tmp_path / "arr.parquet"))
    got = extract(tmp_path / "arr.parquet", tmp_path / "out", kmeans8)
    assert got["b"]["n_frames"] == plain_units["utt-b"]["n_frames"]


def test_parquet_rows_decode_in_worker_processes(tmp_path, kmeans8, plain_units):
    audio_dataset(with_path=False).to_parquet(str(tmp_path / "w.parquet"))
    got = extract(tmp_path / "w.parquet", tmp_path / "out", kmeans8, num_workers=1)
    same_units(got, plain_units, key=lambda rid: list(CLIPS)[int(rid.split("/")[1])])
    assert len(got) == 3


def test_fit_kmeans_on_a_dataset(tmp_path):
    from slamlm.units.fit import FitConfig, run_fit_kmeans
    from slamlm.units.kmeans import load_kmeans

    audio_dataset().save_to_disk(str(tmp_path / "ds"))
    km = run_fit_kmeans(FitConfig(input=str(tmp_path / "ds"), out=str(tmp_path / "km.safetensors"),
                                  k=4, n_init=1, device="cpu"))
    assert load_kmeans(km).k == 4
