"""Format detection, and the text adapter `slam synth --text` uses on the same containers."""

from __future__ import annotations

import json

import pytest
from corpora_helpers import CLIPS, TEXTS
from test_corpora_files import librispeech_tree
from test_corpora_tars import write_shards

from slamlm.corpora import CorpusError, detect_format, list_texts
from slamlm.synth.corpus import SynthConfig, story_jobs
from slamlm.synth.stories import read_user_text


def test_detect_by_spec(tmp_path):
    (tmp_path / "m.jsonl").write_text(json.dumps({"path": "a.wav"}) + "\n")
    (tmp_path / "cuts.jsonl").write_text(json.dumps({"id": "c", "start": 0, "duration": 1,
                                                     "type": "MonoCut", "recording": {}}) + "\n")
    (tmp_path / "l.txt").write_text("a.wav\n")
    write_shards(tmp_path / "sh")
    assert detect_format(tmp_path / "m.jsonl") == "manifest"  # a name with 'cuts' is not enough
    assert detect_format(tmp_path / "cuts.jsonl") == "lhotse"
    assert detect_format(tmp_path / "l.txt") == "list"
    assert detect_format(tmp_path / "sh") == "webdataset"
    assert detect_format(str(tmp_path / "sh" / "train-{000..001}.tar")) == "webdataset"
    assert detect_format(str(tmp_path / "*.flac")) == "files"


def test_texts_from_librispeech_and_tars(tmp_path):
    names = librispeech_tree(tmp_path / "ls")
    assert dict(list_texts(tmp_path / "ls")) == {r: TEXTS[k].upper() for r, k in names.items()}
    write_shards(tmp_path / "sh")
    assert dict(list_texts(tmp_path / "sh")) == TEXTS
    (tmp_path / "plain").mkdir()
    import soundfile as sf

    sf.write(tmp_path / "plain" / "a.flac", CLIPS["utt-a"], 16000)
    with pytest.raises(CorpusError, match="plain: none of its 1 items has text"):
        list_texts(tmp_path / "plain")


def test_synth_text_from_a_parquet_or_hf_dataset(tmp_path):
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_dict({"story": ["One day a cat.", "  The end.  "], "n": [1, 2]})
    ds.to_parquet(str(tmp_path / "stories.parquet"))
    with pytest.raises(CorpusError, match="none of its 2 items has text.*--text-column"):
        read_user_text(tmp_path / "stories.parquet")
    assert read_user_text(tmp_path / "stories.parquet", text_column="story") == \
        ["One day a cat.", "The end."]
    datasets.DatasetDict({"train": ds.rename_column("story", "text"), "test": ds.select([1])
                          .rename_column("story", "text")}).save_to_disk(str(tmp_path / "dd"))
    jobs = story_jobs(SynthConfig(out=str(tmp_path / "o"), text=str(tmp_path / "dd"),
                                  text_split="train", n=0), tmp_path / "o")
    assert [j.text for j in jobs] == ["One day a cat.", "The end."]
    assert [j.id for j in jobs] == ["text_0000000", "text_0000001"]
    # plain .txt / .jsonl text files read as before
    (tmp_path / "s.txt").write_text("A story.\n\nAnother.\n")
    assert read_user_text(tmp_path / "s.txt") == ["A story.", "Another."]


def test_missing_library_says_what_to_install(tmp_path, monkeypatch):
    import sys

    (tmp_path / "cuts.jsonl").write_text(json.dumps({"id": "c", "start": 0, "duration": 1,
                                                     "type": "MonoCut", "recording": {}}) + "\n")
    (tmp_path / "a.parquet").write_bytes(b"PAR1")
    for mod in ("lhotse", "pyarrow", "pyarrow.parquet", "datasets"):
        monkeypatch.setitem(sys.modules, mod, None)  # as if not installed
    with pytest.raises(ImportError, match=r"lhotse manifests needs the 'lhotse' package: "
                                          r"pip install 'slamlm\[corpora\]'"):
        list_texts(tmp_path / "cuts.jsonl")
    with pytest.raises(ImportError, match=r"'pyarrow' package: pip install 'slamlm\[corpora\]'"):
        from slamlm.corpora import list_items

        list_items(tmp_path / "a.parquet")
