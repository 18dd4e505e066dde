"""Praat TextGrids (Montreal Forced Aligner's output): the word intervals of one tier.

Both text formats are read by one tokenizer, as Praat itself reads them: the long ("xmin =
0", ``item [1]:``) and the short format hold the same quoted strings, numbers and
``<exists>`` flags in the same order; labels, ``[n]`` indices and ``!`` comments are skipped.
UTF-8 and UTF-16 (what Praat writes for non-ASCII labels) files are read. Silence intervals
(empty, ``sil``, ``sp``, ``<eps>``) are dropped.

Example:
    >>> # read_textgrid("mfa_out/84/84-121123-0000.TextGrid")
    >>> # [['go', 0.53, 0.71], ['do', 0.71, 0.86], ...]
"""

from __future__ import annotations

import re
from pathlib import Path

from slamlm.io import ManifestError

SILENCE = frozenset({"", "sil", "sp", "<eps>", "<sil>", "sil>", "silence"})
_TOKEN = re.compile(
    r'"((?:[^"]|"")*)"'                           # 1: a string ("" is a quote inside)
    r"|(?<![\w.])(-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)(?![\w.])"  # 2: a number
    r"|(<exists>|<absent>)"                       # 3: a flag
    r"|(\[[^\]\n]*\]|![^\n]*|[A-Za-z_][\w ]*?(?=\s*[=:?\[])|[=:?])"  # 4: labels, skipped
    r"|(\S+)")                                    # 5: anything else: malformed


class TextGridError(ManifestError):
    """A TextGrid that cannot be read; the message names the file, line and fix."""


def _decode(data: bytes) -> str:
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return data.decode("utf-16")
    return data.decode("utf-8-sig")


class _Tokens:
    def __init__(self, text: str, path: Path):
        self.text, self.path = text, path
        self.toks: list[tuple[str, str, int]] = []  # (kind, value, offset)
        for m in _TOKEN.finditer(text):
            if m.group(1) is not None:
                self.toks.append(("str", m.group(1).replace('""', '"'), m.start()))
            elif m.group(2) is not None:
                self.toks.append(("num", m.group(2), m.start()))
            elif m.group(3) is not None:
                self.toks.append(("flag", m.group(3), m.start()))
            elif m.group(5) is not None:
                self.toks.append(("bad", m.group(5), m.start()))
        self.i = 0

    def line(self, offset: int | None = None) -> int:
        if offset is None:
            offset = self.toks[self.i][2] if self.i < len(self.toks) else len(self.text)
        return self.text.count("\n", 0, offset) + 1

    def fail(self, what: str) -> TextGridError:
        got = (f"got {self.toks[self.i][1][:30]!r}" if self.i < len(self.toks)
               else "the file ends")
        return TextGridError(f"{self.path} line {self.line()}: expected {what}, {got} (re-export "
                             f"it from Praat/MFA as a text TextGrid)")

    def take(self, kind: str, what: str) -> str:
        if self.i >= len(self.toks) or self.toks[self.i][0] != kind:
            raise self.fail(what)
        self.i += 1
        return self.toks[self.i - 1][1]

    def number(self, what: str) -> float:
        return float(self.take("num", what))

    def peek(self) -> str | None:
        return self.toks[self.i][0] if self.i < len(self.toks) else None


def read_tiers(path: str | Path) -> dict[str, list[tuple[float, float, str]]]:
    """Every interval tier of a TextGrid: ``{name: [(start, end, label), ...]}`` (point tiers
    are read and left out)."""
    path = Path(path)
    try:
        text = _decode(path.read_bytes())
    except FileNotFoundError as e:
        raise TextGridError(f"{path}: file does not exist") from e
    except UnicodeDecodeError as e:
        raise TextGridError(f"{path}: not UTF-8/UTF-16 text (byte {e.start}); a binary TextGrid? "
                            f"save it from Praat as a text file") from e
    t = _Tokens(text, path)
    if t.take("str", '"ooTextFile" (File type)') != "ooTextFile":
        raise TextGridError(f"{path} line 1: not a Praat text file (File type is not ooTextFile)")
    if t.take("str", '"TextGrid" (Object class)') != "TextGrid":
        raise TextGridError(f"{path} line {t.line()}: Object class is not TextGrid")
    t.number("xmin")
    t.number("xmax")
    if t.peek() == "flag":
        if t.take("flag", "<exists>") == "<absent>":
            return {}
    n_tiers = int(t.number("the number of tiers"))
    tiers: dict[str, list[tuple[float, float, str]]] = {}
    for k in range(n_tiers):
        cls = t.take("str", f'a tier class ("IntervalTier" or "TextTier") for tier {k + 1}')
        name = t.take("str", f"the name of tier {k + 1}")
        t.number(f"xmin of tier {name!r}")
        t.number(f"xmax of tier {name!r}")
        n = int(t.number(f"the number of items of tier {name!r}"))
        rows = []
        for j in range(n):
            where = f"of item {j + 1} of tier {name!r}"
            if cls == "IntervalTier":
                at = t.line()
                s, e = t.number(f"xmin {where}"), t.number(f"xmax {where}")
                label = t.take("str", f"the text {where}")
                if e < s or (rows and s < rows[-1][1] - 1e-6):
                    raise TextGridError(f"{path} line {at}: interval {j + 1} of tier {name!r} "
                                        f"({s}..{e}) overlaps or runs backwards")
                rows.append((s, e, label))
            elif cls == "TextTier":
                t.number(f"the time {where}")
                t.take("str", f"the mark {where}")
            else:
                raise TextGridError(f"{path} line {t.line()}: unknown tier class {cls!r}")
        if cls == "IntervalTier":
            tiers[name] = rows
    return tiers


def read_textgrid(path: str | Path, tier: str = "words") -> list[list]:
    """``[[word, start_s, end_s], ...]`` of the tier named ``tier`` (case-insensitive; MFA
    names it ``words``, or ``<speaker> - words`` for multi-speaker files), silences dropped."""
    tiers = read_tiers(path)
    want = tier.lower()
    names = [n for n in tiers if n.lower() == want] or [
        n for n in tiers if n.lower().endswith(f" - {want}")]
    if not names:
        raise TextGridError(f"{path}: no interval tier named {tier!r} (tiers: "
                            f"{', '.join(map(repr, tiers)) or 'none'}); give --tier")
    if len(names) > 1:
        raise TextGridError(f"{path}: several tiers match {tier!r} ({', '.join(names)}); give "
                            f"--tier with the full name")
    return [[w.strip(), round(s, 4), round(e, 4)] for s, e, w in tiers[names[0]]
            if w.strip().lower() not in SILENCE]
