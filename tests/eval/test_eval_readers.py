import json
import shutil

import pytest
from eval_helpers import LEX_HEADER, write_gold, write_wav

from slamlm.eval.readers import (
    cloze_polarity,
    detect_layout,
    read_benchmark,
    read_salmon,
    read_storycloze,
)
from slamlm.eval.zr2021 import frequency_band, read_zr2021
from slamlm.io import ManifestError


@pytest.mark.parametrize("sub", ["", "lexical", "lexical/dev"])
def test_zr2021_lexical_from_any_level(zr_root, sub):
    bench = read_benchmark(zr_root / sub, name="swuggy")
    assert bench.kind == "zr2021-lexical" and bench.breakdown == ["frequency_band"]
    assert len(bench.pairs) == 6  # 3 ids x 2 voices
    p = next(p for p in bench.pairs if p.id == "w1/Bruce")
    assert p.key == "w1" and p.group["frequency_band"] == "6-20"
    assert p.positive.endswith("lex1Bruce1.wav") and p.negative.endswith("lex1Bruce0.wav")
    assert {p.group["frequency_band"] for p in bench.pairs} == {"oov", "6-20", ">100"}


def test_zr2021_syntactic(zr_root):
    bench = read_benchmark(zr_root, name="sblimp")
    assert bench.kind == "zr2021-syntactic" and bench.breakdown == ["type"]
    assert sorted(p.id for p in bench.pairs)[:2] == ["s0/Alex", "s0/Bruce"]
    assert {p.group["type"] for p in bench.pairs} == {"agreement", "island"}


def test_zr2021_root_needs_a_task_name(zr_root):
    with pytest.raises(ManifestError, match="both lexical/ and syntactic/"):
        read_benchmark(zr_root, name="mybench")


def test_zr2021_missing_file_is_named(zr_root):
    (zr_root / "lexical/dev/lex2Alex0.wav").unlink()
    with pytest.raises(ManifestError, match=r"gold.csv line \d+: audio file .*lex2Alex0.wav does not exist"):
        read_zr2021(zr_root / "lexical")


def test_zr2021_missing_column_is_named(tmp_path):
    d = tmp_path / "lexical/dev"
    write_wav(d / "a.wav", 1)
    write_gold(d / "gold.csv", [c for c in LEX_HEADER if c != "voice"],
               [{"id": "1", "filename": "a", "frequency": 1, "correct": 1}])
    with pytest.raises(ManifestError, match=r"gold.csv: missing column 'voice'"):
        read_zr2021(d)


def test_zr2021_unpaired_row(tmp_path):
    d = tmp_path / "lexical/dev"
    write_wav(d / "a.wav", 1)
    write_gold(d / "gold.csv", LEX_HEADER,
               [{"id": "7", "filename": "a", "voice": "v", "frequency": 1, "correct": 1}])
    with pytest.raises(ManifestError, match=r"line 2: a \(id 7, voice v\) has no correct=0"):
        read_zr2021(d)


def test_frequency_bands():
    assert [frequency_band(f) for f in (0, 1, 5, 6, 20, 21, 100, 101)] == [
        "oov", "1-5", "1-5", "6-20", "6-20", "21-100", "21-100", ">100"]


def test_storycloze_pairs_by_prefix(tmp_path):
    for i in (10, 2, 1):
        write_wav(tmp_path / f"{i}_correct.wav", i)
        write_wav(tmp_path / f"{i}_incorrect.wav", i + 100)
    assert detect_layout(tmp_path) == "storycloze"
    pairs = read_storycloze(tmp_path)
    assert [p.id for p in pairs] == ["1", "2", "10"]  # integer order, not glob order
    assert all(p.positive.endswith("_correct.wav") and p.negative.endswith("_incorrect.wav")
               for p in pairs)


def test_storycloze_unpaired_file(tmp_path):
    write_wav(tmp_path / "0_pos.wav", 1)
    write_wav(tmp_path / "0_neg.wav", 2)
    write_wav(tmp_path / "3_true_ending.wav", 3)
    with pytest.raises(ManifestError, match=r"3_true_ending.wav: unpaired StoryCloze file"):
        read_storycloze(tmp_path)


def test_storycloze_ambiguous_names(tmp_path):
    write_wav(tmp_path / "0_a.wav", 1)
    write_wav(tmp_path / "0_b.wav", 2)
    with pytest.raises(ManifestError, match="cannot tell which is the correct ending"):
        read_storycloze(tmp_path)
    assert cloze_polarity("wrong_end") is False and cloze_polarity("True") is True


def test_salmon_layout(tmp_path):
    for part in ("speaker_consistency", "bg_alignment"):
        for idx in (0, 1, 2):
            for side in (0, 1):
                write_wav(tmp_path / part / f"sample_{idx}_{side}.wav", idx * 2 + side)
    bench = read_benchmark(tmp_path, name="salmon")
    assert bench.kind == "salmon" and bench.breakdown == ["part"]
    assert len(bench.pairs) == 6
    p = bench.pairs[0]
    assert p.id == "bg_alignment/sample_0" and p.positive.endswith("sample_0_0.wav")
    assert p.negative.endswith("sample_0_1.wav") and p.group == {"part": "bg_alignment"}
    assert len(read_salmon(tmp_path / "bg_alignment")) == 3  # one part folder works too
    (tmp_path / "bg_alignment/sample_2_1.wav").unlink()
    with pytest.raises(ManifestError, match=r"sample_2_0.wav: unpaired SALMon file"):
        read_salmon(tmp_path)


def test_pairs_manifest_with_units_and_paths(tmp_path):
    write_wav(tmp_path / "audio/a.wav", 1)
    recs = [{"id": "u1", "positive": [0, 0, 4, 5], "negative": [5, 4], "group": {"t": "x"}},
            {"id": "u2", "positive": "audio/a.wav", "negative": [1], "group": {"t": "y"}}]
    (tmp_path / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    bench = read_benchmark(tmp_path)
    assert bench.kind == "manifest" and bench.breakdown == ["t"]
    assert bench.pairs[0].positive == [0, 0, 4, 5] and bench.pairs[0].key == "u1"
    assert bench.pairs[1].positive == str(tmp_path / "audio/a.wav")
    shutil.rmtree(tmp_path / "audio")
    with pytest.raises(ManifestError, match=r"record 2 positive: audio file .*a.wav does not exist"):
        read_benchmark(tmp_path / "pairs.jsonl")


def test_unknown_layout(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ManifestError, match="unknown benchmark layout"):
        read_benchmark(tmp_path)
