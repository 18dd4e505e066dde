"""The LibriSpeech folder layout: transcripts picked up as text; plain folders unchanged."""

from __future__ import annotations

import pytest
import soundfile as sf
from corpora_helpers import CLIPS, TEXTS, extract, same_units

from slamlm.corpora import CorpusError, detect_format, list_items


def librispeech_tree(root):
    """``spk/chapter/spk-chapter-utt.flac`` + ``spk-chapter.trans.txt``, as LibriSpeech ships."""
    names = {}
    for n, k in enumerate(CLIPS):
        spk, ch = ("103", "1240") if n < 2 else ("19", "198")
        utt = f"{spk}-{ch}-{n:04d}"
        d = root / spk / ch
        d.mkdir(parents=True, exist_ok=True)
        sf.write(d / f"{utt}.flac", CLIPS[k], 16000, subtype="PCM_16")
        with open(d / f"{spk}-{ch}.trans.txt", "a") as f:
            f.write(f"{utt} {TEXTS[k].upper()}\n")
        names[f"{spk}/{ch}/{utt}"] = k
    return names


def test_librispeech_layout_gets_transcripts(tmp_path, kmeans8, plain_units):
    names = librispeech_tree(tmp_path / "dev-clean")
    assert detect_format(tmp_path / "dev-clean") == "files"
    items = list_items(tmp_path / "dev-clean")
    assert [it.id for it in items] == sorted(names)
    got = extract(tmp_path / "dev-clean", tmp_path / "out", kmeans8)
    same_units(got, plain_units, key=names.get)
    assert {rid: r["text"] for rid, r in got.items()} == {
        rid: TEXTS[k].upper() for rid, k in names.items()}


def test_bad_transcript_line_is_named(tmp_path):
    librispeech_tree(tmp_path / "ls")
    (tmp_path / "ls" / "19" / "198" / "19-198.trans.txt").write_text("19-198-0002\n")
    with pytest.raises(CorpusError, match=r"19-198.trans.txt line 1: '19-198-0002' has no text"):
        list_items(tmp_path / "ls")


def test_mixed_folder_asks_for_the_format(tmp_path):
    librispeech_tree(tmp_path / "mix")
    (tmp_path / "mix" / "x.tar").write_bytes(b"")
    with pytest.raises(CorpusError, match="holds both files and webdataset.*--input-format"):
        list_items(tmp_path / "mix")
    assert len(list_items(tmp_path / "mix", input_format="files")) == 3
    with pytest.raises(CorpusError, match="--input-format 'zip': choose one of auto, files"):
        list_items(tmp_path / "mix", input_format="zip")
