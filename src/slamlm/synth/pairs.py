"""User-supplied benchmark pairs in any language: ``slam synth benchmarks --pairs KIND=FILE``.

``lexical`` (sWUGGY-like) TSV: ``word<TAB>nonword`` per line; more tab-separated non-words
after the first are alternatives, of which the one closest in spoken length is kept (see
``matching.py``). ``syntactic`` (sBLIMP-like) TSV: ``good sentence<TAB>bad sentence`` with an
optional third column, the phenomenon (``type``). Blank lines and lines starting with ``#``
are skipped. JSONL form (``.jsonl``): one object per line with ``good`` and ``bad`` (a string
or a list of alternatives) and optional ``id``, ``type``, ``subtype``, ``frequency``.

Ids are stable: the JSONL ``id`` when given, else ``w00000``/``b00000``... in file order.
Malformed lines raise :class:`PairFileError` naming the file, the line and the fix.

Example:
    >>> import pathlib, tempfile
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "words.tsv"
    >>> _ = p.write_text("gato\\tgapo\\n# comment\\nperro\\tpelro\\tperdo\\n", encoding="utf-8")
    >>> [(it["id"], it["good"], [o[1] for o in it["options"]]) for it in read_pairs("lexical", p)]
    [('w00000', 'gato', ['gapo']), ('w00001', 'perro', ['pelro', 'perdo'])]
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

KINDS = ("lexical", "syntactic")
_PREFIX = {"lexical": "w", "syntactic": "b"}


BUILTIN = Path(__file__).resolve().parents[1] / "resources" / "synth"


def builtin_path(spec: str) -> str:
    """``builtin:es/stories.txt`` -> that file of the bundled resources (Spanish toy text and
    pairs); any other string is returned as it is.

    Example:
        >>> Path(builtin_path("builtin:es/words.tsv")).is_file()
        True
    """
    if not spec.startswith("builtin:"):
        return spec
    path = BUILTIN / spec.removeprefix("builtin:")
    if not path.is_file():
        have = sorted(str(p.relative_to(BUILTIN)) for p in BUILTIN.rglob("*") if p.is_file())
        raise FileNotFoundError(f"{spec}: no such bundled file; have: {', '.join(have)}")
    return str(path)


class PairFileError(ValueError):
    """A malformed pair file line (the message names file, line and fix)."""


def parse_pairs_arg(specs: tuple[str, ...] | list[str]) -> dict[str, Path]:
    """``("lexical=words.tsv", ...)`` -> ``{"lexical": Path("words.tsv"), ...}``."""
    out: dict[str, Path] = {}
    for spec in specs:
        kind, sep, path = spec.partition("=")
        path = builtin_path(path) if path else path
        if not sep or kind not in KINDS or not path:
            raise ValueError(f"--pairs {spec!r}: use KIND=FILE with KIND one of {', '.join(KINDS)}"
                             " (e.g. --pairs lexical=words.tsv --pairs syntactic=sentences.tsv)")
        if kind in out:
            raise ValueError(f"--pairs {spec!r}: {kind} given twice")
        if not Path(path).is_file():
            raise FileNotFoundError(f"--pairs {spec!r}: no such file {path}")
        out[kind] = Path(path)
    return out


def _clean(s: str) -> str:
    return " ".join(unicodedata.normalize("NFC", s).split())


def _fields(kind: str, path: Path, lineno: int, line: str) -> dict:
    where = f"{path}:{lineno}"
    if path.suffix == ".jsonl":
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise PairFileError(f"{where}: not valid JSON ({e.msg}); write one object per line "
                                'like {"id": "1", "good": "...", "bad": "..."}') from None
        if not isinstance(rec, dict) or "good" not in rec or "bad" not in rec:
            raise PairFileError(f'{where}: needs "good" and "bad" fields')
        bad = rec["bad"] if isinstance(rec["bad"], list) else [rec["bad"]]
        return {"id": None if rec.get("id") is None else str(rec["id"]),
                "good": _clean(str(rec["good"])), "bad": [_clean(str(b)) for b in bad],
                "type": rec.get("type"), "subtype": rec.get("subtype"),
                "frequency": rec.get("frequency", 0)}
    cols = line.rstrip("\r\n").split("\t")
    what = "word<TAB>nonword" if kind == "lexical" else "good sentence<TAB>bad sentence"
    if len(cols) < 2:
        raise PairFileError(f"{where}: no tab; each line must be {what}")
    if kind == "syntactic" and len(cols) > 3:
        raise PairFileError(f"{where}: {len(cols)} columns; use {what}[<TAB>type]")
    typ = _clean(cols[2]) if kind == "syntactic" and len(cols) == 3 else None
    bad = cols[1:2] if kind == "syntactic" else cols[1:]
    return {"id": None, "good": _clean(cols[0]), "bad": [_clean(b) for b in bad],
            "type": typ, "subtype": None, "frequency": 0}


def read_pairs(kind: str, path: str | Path) -> list[dict]:
    """Items of a user pair file, in the shape of ``bench_items`` (``id``, ``good``, ``bad``,
    ``options`` = ``[[good, bad, extra], ...]`` plus ``frequency`` or ``type``/``subtype``)."""
    if kind not in KINDS:
        raise ValueError(f"unknown pair kind {kind!r}; choose {', '.join(KINDS)}")
    path = Path(path)
    out: list[dict] = []
    seen_pairs: dict[tuple, int] = {}
    seen_ids: dict[str, int] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            r = _fields(kind, path, lineno, line)
            where = f"{path}:{lineno}"
            if not r["good"] or not r["bad"] or not all(r["bad"]):
                raise PairFileError(f"{where}: empty side; both sides need text")
            if any(b.casefold() == r["good"].casefold() for b in r["bad"]):
                raise PairFileError(f"{where}: both sides are the same ({r['good']!r}); the "
                                    "negative must differ from the positive")
            key = (r["good"].casefold(), r["bad"][0].casefold())
            if key in seen_pairs:
                raise PairFileError(f"{where}: duplicate of line {seen_pairs[key]}; remove it")
            seen_pairs[key] = lineno
            rid = r["id"] or f"{_PREFIX[kind]}{len(out):05d}"
            if rid in seen_ids:
                raise PairFileError(f"{where}: id {rid!r} already used on line {seen_ids[rid]}")
            seen_ids[rid] = lineno
            out.append(_item(kind, rid, r))
    if not out:
        raise PairFileError(f"{path}: no pairs found")
    return out


def _item(kind: str, rid: str, r: dict) -> dict:
    good, bads = r["good"], list(dict.fromkeys(r["bad"]))
    if kind == "lexical":
        return {"id": rid, "good": good, "bad": bads[0], "frequency": int(r["frequency"] or 0),
                "options": [[good, b, {}] for b in bads]}
    typ = r["type"] or "user"
    sub = r["subtype"] or typ
    return {"id": rid, "type": typ, "subtype": sub, "good": good, "bad": bads[0],
            "options": [[good, b, {"subtype": sub}] for b in bads]}
