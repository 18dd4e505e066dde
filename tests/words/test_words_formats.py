"""Readers of external word alignments: Praat/MFA TextGrids (long and short text formats,
UTF-8 and UTF-16) and CorentinJ's LibriSpeech alignment files; errors name file and line."""

from __future__ import annotations

import pytest

from slamlm.words.librispeech import (
    LibriAlignError,
    find_alignment_files,
    parse_line,
    read_alignment_file,
)
from slamlm.words.textgrid import TextGridError, read_textgrid, read_tiers

WORDS = [(0.0, 0.41, ""), (0.41, 0.75, "go"), (0.75, 0.9, "do"), (0.9, 1.02, "sp"),
         (1.02, 1.5, 'say "hi"'), (1.5, 2.0, "")]
PHONES = [(0.0, 0.41, "sil"), (0.41, 0.6, "G"), (0.6, 0.75, "OW1"), (0.75, 2.0, "D")]
EXPECT = [["go", 0.41, 0.75], ["do", 0.75, 0.9], ['say "hi"', 1.02, 1.5]]


def _q(s: str) -> str:
    return '"' + s.replace('"', '""') + '"'


def long_format(tiers, points=()) -> str:
    """A TextGrid as Praat writes it in its long text format (MFA's output)."""
    n = len(tiers) + bool(points)
    out = ['File type = "ooTextFile"', 'Object class = "TextGrid"', "", "xmin = 0 ",
           "xmax = 2 ", "tiers? <exists> ", f"size = {n} ", "item []: "]
    for k, (name, rows) in enumerate(tiers, 1):
        out += [f"    item [{k}]:", '        class = "IntervalTier" ', f"        name = {_q(name)} ",
                "        xmin = 0 ", "        xmax = 2 ", f"        intervals: size = {len(rows)} "]
        for j, (s, e, w) in enumerate(rows, 1):
            out += [f"        intervals [{j}]:", f"            xmin = {s} ",
                    f"            xmax = {e} ", f"            text = {_q(w)} "]
    if points:
        out += [f"    item [{n}]:", '        class = "TextTier" ', '        name = "events" ',
                "        xmin = 0 ", "        xmax = 2 ", f"        points: size = {len(points)} "]
        for j, (t, m) in enumerate(points, 1):
            out += [f"        points [{j}]:", f"            number = {t} ",
                    f"            mark = {_q(m)} "]
    return "\n".join(out) + "\n"


def short_format(tiers) -> str:
    out = ['File type = "ooTextFile"', 'Object class = "TextGrid"', "", "0", "2", "<exists>",
           str(len(tiers))]
    for name, rows in tiers:
        out += ['"IntervalTier"', _q(name), "0", "2", str(len(rows))]
        for s, e, w in rows:
            out += [str(s), str(e), _q(w)]
    return "\n".join(out) + "\n"


def test_textgrid_long_and_short_formats_agree(tmp_path):
    long_p, short_p = tmp_path / "a_long.TextGrid", tmp_path / "a_short.TextGrid"
    long_p.write_text(long_format([("words", WORDS), ("phones", PHONES)], [(1.0, "click")]))
    short_p.write_text(short_format([("phones", PHONES), ("words", WORDS)]))
    assert read_textgrid(long_p) == read_textgrid(short_p) == EXPECT
    tiers = read_tiers(long_p)
    assert list(tiers) == ["words", "phones"]  # the point tier is read and left out
    assert tiers["phones"][1] == (0.41, 0.6, "G")
    assert read_textgrid(short_p, tier="PHONES")[0] == ["G", 0.41, 0.6]


def test_textgrid_utf16_and_speaker_tiers(tmp_path):
    p = tmp_path / "u.TextGrid"
    rows = [(0.0, 0.5, "caf\u00e9"), (0.5, 1.0, "na\u00efve")]
    p.write_bytes(long_format([("spk1 - words", rows)]).encode("utf-16"))  # with a BOM
    assert read_textgrid(p) == [["caf\u00e9", 0.0, 0.5], ["na\u00efve", 0.5, 1.0]]


def test_textgrid_errors_name_file_and_line(tmp_path):
    p = tmp_path / "bad.TextGrid"
    text = long_format([("words", WORDS)]).replace("xmax = 0.9 ", "xmax = oops ")
    p.write_text(text)
    line = next(i for i, s in enumerate(text.splitlines(), 1) if "oops" in s)
    with pytest.raises(TextGridError, match=rf"bad.TextGrid line {line}: expected xmax of item 3 "
                                            r"of tier 'words', got 'oops'"):
        read_textgrid(p)
    p.write_text(long_format([("words", WORDS)]).rsplit("intervals [6]", 1)[0])
    with pytest.raises(TextGridError, match="expected xmin of item 6 .* the file ends"):
        read_textgrid(p)
    p.write_text(short_format([("words", [(0, 1, "a"), (0.5, 2, "b")])]))
    with pytest.raises(TextGridError, match="line 16: interval 2 of tier 'words'.*overlaps"):
        read_textgrid(p)
    p.write_text(short_format([("phones", PHONES)]))
    with pytest.raises(TextGridError, match="no interval tier named 'words' \\(tiers: 'phones'\\)"):
        read_textgrid(p)
    p.write_text("just some text\n")
    with pytest.raises(TextGridError, match="bad.TextGrid line 1"):
        read_textgrid(p)
    p.write_bytes(b"ooBinaryFile\x08TextGrid\xff\xfe\x00")
    with pytest.raises(TextGridError, match="bad.TextGrid"):
        read_textgrid(p)


ALIGN = ('84-121123-0000 ",GO,,DO,YOU,HEAR," "0.490,0.890,1.270,1.380,1.490,1.890,2.280"\n'
         '84-121123-0001 ",BUT,IN,LESS," "0.370,0.600,0.710,1.100,1.300"\n')


def test_librispeech_alignment_file(tmp_path):
    d = tmp_path / "dev-clean" / "84" / "121123"
    d.mkdir(parents=True)
    f = d / "84-121123.alignment.txt"
    f.write_text(ALIGN)
    rows = read_alignment_file(f)
    assert [r[0] for r in rows] == ["84-121123-0000", "84-121123-0001"]
    assert rows[0][1] == [["GO", 0.49, 0.89], ["DO", 1.27, 1.38], ["YOU", 1.38, 1.49],
                          ["HEAR", 1.49, 1.89]]  # the empty word between GO and DO: a pause
    assert rows[1][1][-1] == ["LESS", 0.71, 1.1] and rows[1][2] == 2
    assert find_alignment_files(tmp_path) == [f]


@pytest.mark.parametrize("line,msg", [
    ('u1 ",A,B," "0.1,0.5,0.9"', "4 words but 3 end times"),
    ('u1 ",A," "0.1,x,0.9"', "end times must be numbers"),
    ('u1 ,A, "0.1,0.5,0.9"', "the words field must be in double quotes"),
    ('u1 ",A,"', "expected 3 fields"),
    ('u1 ",A,B," "0.1,0.5,0.4,0.9"', "end time 3 \\(0.4\\) is before"),
])
def test_librispeech_errors_name_file_and_line(line, msg):
    with pytest.raises(LibriAlignError, match=f"x.alignment.txt line 7: {msg}"):
        parse_line(line, "x.alignment.txt", 7)


def test_librispeech_missing_input(tmp_path):
    with pytest.raises(LibriAlignError, match="no \\*.alignment.txt files"):
        find_alignment_files(tmp_path)
    with pytest.raises(LibriAlignError, match="no such file"):
        find_alignment_files(tmp_path / "nope")
