"""slam align-words end to end: synthetic speech with transcripts -> aligned_text.jsonl
(failures for unalignable audio, resume), TextGrid / LibriSpeech folders -> the same records;
the aligned_text records round trip and bad ones are named by file and line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
from test_words_formats import ALIGN, WORDS, long_format, short_format

from slamlm.cli import main
from slamlm.io import ManifestError, read_jsonl, write_jsonl
from slamlm.words.aligned import check_words, make_record, read_alignments
from slamlm.words.runner import AlignWordsConfig, detect_source, run_align_words

TEXTS = {"spk/a": "The cat sat on the mat.", "spk/b": "A Zorblax dog ran home quickly.",
         "spk/c": "Birds flew over the green hills."}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A manifest of espeak-ng utterances (known word times) plus a silent one."""
    pytest.importorskip("pocketsphinx")
    pytest.importorskip("espeakng_loader")
    from slamlm.synth.tts import Voice, get_backend

    d = tmp_path_factory.mktemp("corpus")
    tts = get_backend("espeak")
    rows, ref = [], {}
    for i, (rid, text) in enumerate(TEXTS.items()):
        wav, sr, words = tts.synthesize(text, Voice(("en-us", "en-us+f3")[i % 2]))
        sf.write(d / f"{i}.wav", wav, sr)
        rows.append({"path": f"{i}.wav", "id": rid, "text": text})
        ref[rid] = words
    sf.write(d / "quiet.wav", np.zeros(16000, np.float32), 16000)
    rows.append({"path": "quiet.wav", "id": "spk/quiet", "text": "hello there"})
    sf.write(d / "notext.wav", np.zeros(16000, np.float32), 16000)
    rows.append({"path": "notext.wav", "id": "spk/notext"})
    write_jsonl(d / "manifest.jsonl", rows)
    return d / "manifest.jsonl", ref


def test_align_audio_corpus(tmp_path, corpus):
    manifest, ref = corpus
    out = run_align_words(AlignWordsConfig(input=str(manifest), out=str(tmp_path / "w")))
    recs = {r["id"]: r for r in read_jsonl(out / "aligned_text.jsonl")}
    assert set(recs) == set(TEXTS)
    errs = []
    for rid, rec in recs.items():
        assert rec["text"] == TEXTS[rid] and rec["file_name"].endswith(".wav")
        assert [w[0] for w in rec["aligned_text"]] == [w[0] for w in ref[rid]]
        errs += [abs(a[k] - b[k]) for a, b in zip(rec["aligned_text"], ref[rid]) for k in (1, 2)]
    assert np.median(errs) < 0.1
    assert recs["spk/b"]["oov"] == {"zorblax": "Z AO R B L AE K S (espeak)"}
    fails = {r["id"]: r["reason"] for r in read_jsonl(out / "failures.jsonl")}
    assert fails.keys() == {"spk/quiet", "spk/notext"}
    assert "silent" in fails["spk/quiet"] and "no transcript" in fails["spk/notext"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["records"] == 3 and summary["failed"] == 2 and summary["n_oov_words"] == 1
    assert not (out / "aligned_text.partial.jsonl").exists()
    # same records through read_alignments (the packer's reader), and from 2 processes
    assert read_alignments(out) == {k: v["aligned_text"] for k, v in recs.items()}
    par = run_align_words(AlignWordsConfig(input=str(manifest), out=str(tmp_path / "p"),
                                           workers=2))
    assert list(read_jsonl(par / "aligned_text.jsonl")) == list(recs.values())


def test_align_resumes_a_killed_run(tmp_path, corpus):
    manifest, _ = corpus
    out = tmp_path / "w"
    run_align_words(AlignWordsConfig(input=str(manifest), out=str(out)))
    done = list(read_jsonl(out / "aligned_text.jsonl"))
    # a killed run: one record finished in the partial file, a cut line, no final file
    (out / "aligned_text.jsonl").unlink()
    (out / "summary.json").unlink()
    (out / "aligned_text.partial.jsonl").write_text(json.dumps(done[0]) + '\n{"id": "spk/')
    marker = dict(done[0], text="KEPT")  # a record kept from before is not re-aligned
    (out / "aligned_text.partial.jsonl").write_text(json.dumps(marker) + '\n{"id": "spk/')
    run_align_words(AlignWordsConfig(input=str(manifest), out=str(out), workers=2))
    again = {r["id"]: r for r in read_jsonl(out / "aligned_text.jsonl", cut_tail="error")}
    assert set(again) == set(TEXTS) and again[done[0]["id"]]["text"] == "KEPT"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["aligned"] == 2  # only the two missing ones; failures are not retried
    assert len(list(read_jsonl(out / "failures.jsonl"))) == 2


def test_textgrid_and_librispeech_folders(tmp_path):
    tg = tmp_path / "mfa" / "84"
    tg.mkdir(parents=True)
    (tg / "84-0001.TextGrid").write_text(long_format([("words", WORDS)]))
    (tg / "84-0002.TextGrid").write_text(short_format([("words", WORDS)]))
    (tg / "84-0003.TextGrid").write_text(short_format([("words", WORDS)]).replace("0.75", "x"))
    (tg / "84-0004.TextGrid").write_text(short_format([("words", [(0, 2, "sil")])]))
    assert detect_source(tmp_path / "mfa") == "textgrid"
    out = run_align_words(AlignWordsConfig(input=str(tmp_path / "mfa"), out=str(tmp_path / "o")))
    got = read_alignments(out)
    assert got == {"84/84-0001": [["go", 0.41, 0.75], ["do", 0.75, 0.9], ['say "hi"', 1.02, 1.5]],
                   "84/84-0002": got["84/84-0001"]}
    fails = {r["id"]: r["reason"] for r in read_jsonl(out / "failures.jsonl")}
    assert "84-0003.TextGrid line" in fails["84/84-0003"]
    assert "only silence" in fails["84/84-0004"]
    out = run_align_words(AlignWordsConfig(input=str(tmp_path / "mfa"), out=str(tmp_path / "s"),
                                           ids="stem"))
    assert set(read_alignments(out)) == {"84-0001", "84-0002"}

    ls = tmp_path / "ls" / "dev-clean" / "84" / "121123"
    ls.mkdir(parents=True)
    (ls / "84-121123.alignment.txt").write_text(ALIGN)
    rc = main(["align-words", str(tmp_path / "ls"), "--out", str(tmp_path / "l")])
    assert rc == 0
    got = read_alignments(tmp_path / "l")
    assert list(got) == ["dev-clean/84/121123/84-121123-0000", "dev-clean/84/121123/84-121123-0001"]
    assert got["dev-clean/84/121123/84-121123-0000"][0] == ["GO", 0.49, 0.89]
    rec = next(read_jsonl(tmp_path / "l" / "aligned_text.jsonl"))
    assert rec["text"] == "GO DO YOU HEAR" and "alignment.txt line 1" in rec["file_name"]
    (ls / "84-121123.alignment.txt").write_text(ALIGN + 'u2 ",A," "0.5"\n')
    assert main(["align-words", str(tmp_path / "ls"), "--out", str(tmp_path / "l2")]) == 0
    fails = list(read_jsonl(tmp_path / "l2" / "failures.jsonl"))
    assert "84-121123.alignment.txt line 3: 3 words but 1 end times" in fails[0]["reason"]
    assert main(["align-words", str(tmp_path / "ls"), "--out", str(tmp_path / "l3"),
                 "--strict"]) == 1


def test_aligned_records_round_trip_and_errors(tmp_path):
    recs = [make_record("a/1", [["hi", 0.1, 0.3], ["there", 0.3, 0.72]], file_name="a/1.wav"),
            make_record("a/2", [["x", 0, 0.5]], text="X!")]
    p = write_jsonl(tmp_path / "aligned_text.jsonl", recs)
    assert recs[0]["text"] == "hi there" and recs[1]["text"] == "X!"
    assert read_alignments(tmp_path) == {"a/1": [["hi", 0.1, 0.3], ["there", 0.3, 0.72]],
                                         "a/2": [["x", 0.0, 0.5]]}
    # slamkit-style dict words are accepted too
    assert check_words([{"word": " hi", "start": 0, "end": 1}], "w") == [[" hi", 0.0, 1.0]]
    bad = {
        '{"id": "a", "aligned_text": [["hi", 0.5, 0.2]]}': "line 2: word 1 \\('hi'\\) has start",
        '{"id": "a", "aligned_text": [["a", 1, 2], ["b", 0.5, 3]]}': "line 2: word 2 .* before",
        '{"id": "a", "aligned_text": [["a", "x", 1]]}': "line 2: word 1 .* must be numbers",
        '{"id": "a", "aligned_text": [["", 0, 1]]}': "line 2: word 1 has no text",
        '{"aligned_text": []}': "line 2: needs an 'id'",
        '{"id": "a/1", "aligned_text": []}': "line 2: id 'a/1' is also on line 1",
        '{"id": "a"}': "line 2: no 'aligned_text'",
        '{"id": "a", ': "line 2: not valid JSON",
    }
    for line, msg in bad.items():
        p.write_text(json.dumps(recs[0]) + "\n" + line + "\n")
        with pytest.raises(ManifestError, match=f"aligned_text.jsonl {msg}"):
            read_alignments(p)
    with pytest.raises(ManifestError, match="no alignments file"):
        read_alignments(tmp_path / "missing")
