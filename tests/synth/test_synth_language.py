"""Any espeak-ng language: word timings in non-Latin scripts, voice validation, voice gender
from variants, user pair files (parsing errors name file and line) and benchmarks from them."""

import csv
import json

import numpy as np
import pytest

from slamlm.synth.espeak import list_variants, list_voices, validate_voice
from slamlm.synth.pairs import PairFileError, parse_pairs_arg, read_pairs
from slamlm.synth.tts import Voice, get_backend, text_words, voice_gender

SCRIPTS = {
    "hi": "मेरा नाम राम है और मैं घर जाता हूँ।",
    "ru": "Кошка спит на тёплом окне, а собака лает.",
    "el": "Η γάτα κοιμάται στο παράθυρο του σπιτιού.",
    "es": "¿Dónde está el niño? Comió una manzana roja.",
}


def test_tokenizer_is_unicode_aware():
    assert [w for w, _, _ in text_words(SCRIPTS["hi"])] == [
        "मेरा", "नाम", "राम", "है", "और", "मैं", "घर", "जाता", "हूँ"]  # matras stay in the word
    assert [w for w, _, _ in text_words(SCRIPTS["es"])] == [
        "Dónde", "está", "el", "niño", "Comió", "una", "manzana", "roja"]
    assert [w for w, _, _ in text_words("l'homme d’abord, re-take _x_")] == [
        "l'homme", "d’abord", "re-take", "x"]
    words = text_words("Кошка спит")
    assert [("Кошка", 0, 5), ("спит", 6, 10)] == words


@pytest.mark.parametrize("lang", sorted(SCRIPTS))
def test_word_timings_in_any_script(lang):
    text = SCRIPTS[lang]
    wav, sr, words = get_backend("espeak").synthesize(text, Voice(lang))
    dur = len(wav) / sr
    assert [w[0] for w in words] == [w for w, _, _ in text_words(text)]  # one per word
    starts = [s for _, s, _ in words]
    assert all(0 <= s < e <= dur + 1e-6 for _, s, e in words)
    assert all(a < b for a, b in zip(starts, starts[1:]))  # strictly monotonic
    assert all(w[2] <= n[1] + 1e-6 for w, n in zip(words, words[1:]))  # no overlap
    # engine events, not a proportional guess: starts are not evenly spread by letters
    lens = np.array([len(w[0]) for w in words], float)
    even = words[0][1] + np.concatenate([[0], np.cumsum(lens[:-1])]) / lens.sum() * (
        words[-1][2] - words[0][1])
    assert np.abs(np.array(starts) - even).max() > 0.02


def test_voice_validation_suggests_close_names():
    assert {"es", "hi", "ru", "el"} <= set(list_voices(""))
    assert {"f3", "m3"} <= set(list_variants())
    assert validate_voice("es+f3") == "es+f3" and validate_voice("en-us") == "en-us"
    with pytest.raises(ValueError, match=r"no voice 'spanish'.*es"):
        validate_voice("spanish")
    with pytest.raises(ValueError, match=r"no voice 'esp'.*close names: es"):
        validate_voice("esp")
    with pytest.raises(ValueError, match=r"variant \+f33.*\+f3"):
        validate_voice("es+f33")


def test_synth_stories_rejects_unknown_voice_before_speaking(tmp_path):
    from slamlm.synth.corpus import SynthConfig, run_synth

    text = tmp_path / "t.txt"
    text.write_text("Hola.\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no voice 'castellano'"):
        run_synth(SynthConfig(out=str(tmp_path / "o"), text=str(text), voice="castellano"))
    assert not (tmp_path / "o/manifest.jsonl").exists()


def test_voice_gender_from_variants_in_any_language():
    assert [voice_gender(v) for v in ("es", "ru", "es+f3", "hi+f2", "el+m3", "en-us+f3")] == [
        "m", "m", "f", "f", "m", "f"]


def test_salmon_voices_stay_in_the_language():
    from slamlm.synth.benchmarks import BenchConfig, _salmon_voices

    cfg = BenchConfig(voice="es")  # one voice: the other gender is es+f3 / es+f2, not English
    for i in range(6):
        a, b = _salmon_voices(cfg, "gender_consistency", i)
        assert a.name.startswith("es") and b.name.startswith("es")
        assert voice_gender(a.name) != voice_gender(b.name)


def _write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


@pytest.mark.parametrize("kind,body,match", [
    ("lexical", "gato\tgapo\nperro pelro\n", r"words.tsv:2: no tab"),
    ("lexical", "gato\tgapo\n\n# c\nperro\t \n", r"words.tsv:4: empty side"),
    ("lexical", "gato\tGato\n", r"words.tsv:1: both sides are the same"),
    ("lexical", "gato\tgapo\nmesa\tmefa\ngato\tgapo\n", r"words.tsv:3: duplicate of line 1"),
    ("syntactic", "A b.\tB a.\tt\textra\n", r"words.tsv:1: 4 columns"),
])
def test_pair_file_errors_name_file_and_line(tmp_path, kind, body, match):
    p = _write(tmp_path, "words.tsv", body)
    with pytest.raises(PairFileError, match=match):
        read_pairs(kind, p)


def test_pair_files_jsonl_and_args(tmp_path):
    p = _write(tmp_path, "s.jsonl", '{"id": "x1", "good": "El gato duerme.", "bad": '
               '["El gato duermen.", "Gato el duerme."], "type": "acuerdo"}\n'
               '{"id": "x1", "good": "La casa.", "bad": "Las casa."}\n')
    with pytest.raises(PairFileError, match=r"s.jsonl:2: id 'x1' already used on line 1"):
        read_pairs("syntactic", p)
    p.write_text('{"id": "x1", "good": "El gato duerme.", "bad": ["El gato duermen.", '
                 '"Gato el duerme."], "type": "acuerdo"}\n{"good": "La casa."}\n')
    with pytest.raises(PairFileError, match=r's.jsonl:2: needs "good" and "bad"'):
        read_pairs("syntactic", p)
    p.write_text(p.read_text().splitlines()[0] + "\n")
    [it] = read_pairs("syntactic", p)
    assert (it["id"], it["type"], len(it["options"])) == ("x1", "acuerdo", 2)
    with pytest.raises(ValueError, match="KIND=FILE"):
        parse_pairs_arg(["phonetic=x.tsv"])
    with pytest.raises(FileNotFoundError, match="no such file"):
        parse_pairs_arg([f"lexical={tmp_path}/missing.tsv"])


def test_benchmarks_from_user_pairs_in_russian(tmp_path):
    from slamlm.synth.benchmarks import BenchConfig, is_done, run_benchmarks

    lex = _write(tmp_path, "w.tsv", "кошка\tкошпа\tкоршка\nокно\tокмо\n")
    syn = _write(tmp_path, "s.tsv", "Кошка спит.\tКошка спят.\tсогласование\n")
    cfg = BenchConfig(out=str(tmp_path / "b"), voice="ru", workers=1,
                      pairs=(f"lexical={lex}", f"syntactic={syn}"))
    out = run_benchmarks(cfg)
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["lexical", "syntactic"]
    rows = list(csv.DictReader(open(out / "lexical/dev/gold.csv", encoding="utf-8")))
    assert [(r["id"], r["correct"], r["voice"]) for r in rows] == [
        ("w00000", "1", "ru"), ("w00000", "0", "ru"), ("w00001", "1", "ru"), ("w00001", "0", "ru")]
    assert rows[0]["word"] == "кошка" and rows[1]["word"] in ("кошпа", "коршка")
    assert rows[0]["phones"] and int(rows[0]["length"]) == len(rows[0]["phones"].split())
    assert all((out / "lexical/dev" / f"{r['filename']}.wav").is_file() for r in rows)
    syn_rows = list(csv.DictReader(open(out / "syntactic/dev/gold.csv", encoding="utf-8")))
    assert [r["type"] for r in syn_rows] == ["согласование"] * 2
    matched = [json.loads(x) for x in (out / "length_match.jsonl").read_text().splitlines()]
    lexm = [m for m in matched if m["bench"] == "lexical"]
    assert [m["id"] for m in lexm] == ["w00000", "w00001"] and lexm[0]["pos_s"][0] > 0
    # phone counts first (кошка, кошпа: 5 Russian phonemes; коршка: 6), then duration
    assert rows[1]["word"] == "кошпа" and rows[0]["length"] == rows[1]["length"]
    assert is_done(cfg)
    syn.write_text("Кошка спит.\tКошки спит.\n", encoding="utf-8")  # edited file: rebuild
    assert not is_done(cfg)
