"""LibriSpeech word alignments in CorentinJ's ``librispeech-alignments`` format.

One ``<speaker>-<chapter>.alignment.txt`` per chapter folder, one line per utterance::

    84-121123-0000 ",GO,,DO,YOU,HEAR," "0.490,0.890,1.270,1.380,1.490,1.890,2.280"

the words (an empty string is a silence) and the *end* time of each, in seconds; a word
starts where the one before it ends (the first at 0).

Example:
    >>> parse_line('u1 ",HI,THERE," "0.5,0.9,1.4,1.6"', "a.txt", 1)
    ('u1', [['HI', 0.5, 0.9], ['THERE', 0.9, 1.4]])
"""

from __future__ import annotations

from pathlib import Path

from slamlm.io import ManifestError

SUFFIX = ".alignment.txt"


class LibriAlignError(ManifestError):
    """A malformed alignment line; the message names the file and line."""


def parse_line(line: str, path: str | Path, lineno: int) -> tuple[str, list[list]]:
    """(utterance id, ``[[word, start_s, end_s], ...]``) of one line, silences dropped."""
    where = f"{path} line {lineno}"
    parts = line.split()
    if len(parts) != 3:
        raise LibriAlignError(f'{where}: expected 3 fields (<utt-id> "<words>" "<end times>"), '
                              f"got {len(parts)}")
    utt, words_s, times_s = parts
    for name, field in (("words", words_s), ("end times", times_s)):
        if len(field) < 2 or field[0] != '"' or field[-1] != '"':
            raise LibriAlignError(f"{where}: the {name} field must be in double quotes, got "
                                  f"{field[:40]!r}")
    words = words_s[1:-1].split(",")
    try:
        ends = [float(x) for x in times_s[1:-1].split(",")]
    except ValueError as e:
        raise LibriAlignError(f"{where}: end times must be numbers ({e})") from e
    if len(words) != len(ends):
        raise LibriAlignError(f"{where}: {len(words)} words but {len(ends)} end times")
    out, prev = [], 0.0
    for i, (w, e) in enumerate(zip(words, ends)):
        if e < prev:
            raise LibriAlignError(f"{where}: end time {i + 1} ({e}) is before the one before "
                                  f"it ({prev})")
        if w:
            out.append([w, round(prev, 4), round(e, 4)])
        prev = e
    return utt, out


def read_alignment_file(path: str | Path) -> list[tuple[str, list[list], int]]:
    """Every (utterance id, words, line number) of one ``.alignment.txt``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise LibriAlignError(f"{path}: not UTF-8 text (byte {e.start})") from e
    out = []
    for i, line in enumerate(text.splitlines(), 1):
        if line.strip():
            out.append((*parse_line(line, path, i), i))
    return out


def find_alignment_files(spec: str | Path) -> list[Path]:
    """``*.alignment.txt`` files of a folder (recursive, sorted) or the one file given."""
    p = Path(spec)
    if p.is_file():
        return [p]
    if not p.is_dir():
        raise LibriAlignError(f"{p}: no such file or folder")
    files = sorted(p.rglob(f"*{SUFFIX}"))
    if not files:
        raise LibriAlignError(f"{p}: no *{SUFFIX} files under it")
    return files
