import json
import shutil
from pathlib import Path

import pytest
from eval_helpers import LEX_HEADER, SYN_HEADER, write_gold, write_wav

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
    assert sorted(p.id for p in bench.pairs)[:2] == ["agreement/s/s0/Alex", "agreement/s/s0/Bruce"]
    assert {p.key for p in bench.pairs} == {"agreement/s/s0", "island/s/s1", "agreement/s/s2"}
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
    with pytest.raises(ManifestError, match=r"line 2: a \(id='7', voice='v'\) has no correct=0"):
        read_zr2021(d)


def test_frequency_bands_are_the_official_half_open_bins():
    # official: pandas.cut(freq, [0, 1, 5, 20, 100, inf], right=False) labelled
    # oov, 1-5, 6-20, 21-100, >100 -- so 5 is "6-20", 20 is "21-100", 100 is ">100"
    assert [frequency_band(f) for f in (0, 1, 4, 5, 19, 20, 99, 100, 101)] == [
        "oov", "1-5", "1-5", "6-20", "6-20", "21-100", "21-100", ">100", ">100"]
    assert frequency_band("") == frequency_band(-1) == "unknown"


def syn_rows(d, spec):
    """gold rows + wav files for (type, subtype, id, voice, correct) tuples."""
    rows = []
    for n, (typ, sub, gid, voice, correct) in enumerate(spec):
        name = f"{sub}_{gid}_{voice}_{correct}_{n}"
        write_wav(d / f"{name}.wav", n)
        rows.append({"filename": name, "type": typ, "subtype": sub, "id": gid, "voice": voice,
                     "correct": correct, "transcription": name})
    write_gold(d / "gold.csv", SYN_HEADER, rows)
    return rows


def test_zr2021_syntactic_ids_repeat_across_subtypes(tmp_path):
    """The official key is (type, subtype, id): id 1 of two subtypes is two pairs, not a mix."""
    d = tmp_path / "syntactic/dev"
    spec = [(t, sub, "1", v, c) for t, sub in (("agr", "a"), ("agr", "b"), ("isl", "a"))
            for v in ("Alex", "Bob") for c in (1, 0)]
    syn_rows(d, spec)
    pairs = read_zr2021(d)
    assert len(pairs) == 6  # 3 keys x 2 voices, one negative each (was 2 negatives per pair)
    assert {p.key for p in pairs} == {"agr/a/1", "agr/b/1", "isl/a/1"}
    for p in pairs:
        typ, sub, gid = p.key.split("/")
        voice = p.group["voice"]
        assert Path(p.positive).name.startswith(f"{sub}_{gid}_{voice}_1")
        assert Path(p.negative).name.startswith(f"{sub}_{gid}_{voice}_0")
        assert (p.group["type"], p.group["subtype"]) == (typ, sub)


def test_zr2021_ambiguous_syntactic_pair_is_refused(tmp_path):
    d = tmp_path / "syntactic/dev"
    syn_rows(d, [("agr", "a", "1", "Alex", 1), ("agr", "a", "1", "Alex", 0),
                 ("agr", "a", "1", "Alex", 0)])
    with pytest.raises(ManifestError) as e:
        read_zr2021(d)
    msg = str(e.value)
    assert str(d / "gold.csv") in msg and "lines 3, 4: 2 correct=0 rows" in msg
    assert "type='agr', subtype='a', id='1', voice='Alex'" in msg


def test_zr2021_rows_the_official_scorer_would_pair_by_position_are_flagged(tmp_path, caplog):
    d = tmp_path / "syntactic/dev"
    syn_rows(d, [("agr", "a", "1", "v", 1), ("agr", "a", "2", "v", 1),
                 ("agr", "a", "2", "v", 0), ("agr", "a", "1", "v", 0)])
    with caplog.at_level("WARNING"):
        pairs = read_zr2021(d)
    assert len(pairs) == 2 and "pairs rows by position" in caplog.text


def test_zr2021_lexical_band_edges_from_gold(tmp_path):
    d = tmp_path / "lexical/dev"
    rows = []
    for i, freq in enumerate([0, 4, 5, 19, 20, 99, 100]):
        for correct in (1, 0):
            name = f"w{i}_{correct}"
            write_wav(d / f"{name}.wav", 2 * i + correct)
            rows.append({"id": f"w{i}", "filename": name, "voice": "v", "correct": correct,
                         "frequency": freq if correct else ""})
    write_gold(d / "gold.csv", LEX_HEADER, rows)
    bands = {p.key: p.group["frequency_band"] for p in read_zr2021(d)}
    assert bands == {"w0": "oov", "w1": "1-5", "w2": "6-20", "w3": "6-20", "w4": "21-100",
                     "w5": "21-100", "w6": ">100"}


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
