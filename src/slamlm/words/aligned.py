"""``aligned_text`` records: one JSONL line per utterance, keyed by the id its units record
carries, with slamkit's field (``slamkit/utils/data_prep.py``: ``aligned_text`` is a list of
``(word, start, end)``, seconds)::

    {"id": "84/121123/84-121123-0000", "aligned_text": [["GO", 0.49, 0.89], ...],
     "text": "GO DO YOU HEAR", "file_name": "LibriSpeech/dev-clean/84/121123/...flac"}

(slamkit's words carry the leading space of the ASR that made them and are joined with
``''``; ours are bare words joined with spaces, as the synthetic corpus's ``words``.)

Example:
    >>> check_words([["hi", 0.1, 0.3], ["there", 0.3, 0.7]], "a.jsonl line 1")
    [['hi', 0.1, 0.3], ['there', 0.3, 0.7]]
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from slamlm.io import ManifestError, open_text

FILE = "aligned_text.jsonl"


def check_words(words: Any, where: str) -> list[list]:
    """``words`` as ``[[word, start_s, end_s], ...]``, checked: non-empty words, finite
    times, start <= end, starts in order. :class:`ManifestError` naming ``where`` otherwise."""
    if not isinstance(words, list):
        raise ManifestError(f"{where}: 'aligned_text' must be a list of [word, start, end], got "
                            f"{type(words).__name__}")
    out: list[list] = []
    for i, w in enumerate(words, 1):
        if isinstance(w, dict):
            w = [w.get("word"), w.get("start"), w.get("end")]
        if not isinstance(w, (list, tuple)) or len(w) != 3:
            raise ManifestError(f"{where}: word {i} must be [word, start_s, end_s], got "
                                f"{str(w)[:60]}")
        word, s, e = w
        if not isinstance(word, str) or not word.strip():
            raise ManifestError(f"{where}: word {i} has no text ({word!r})")
        try:
            s, e = float(s), float(e)
        except (TypeError, ValueError) as err:
            raise ManifestError(f"{where}: word {i} ({word!r}) times must be numbers, got "
                                f"{w[1]!r}, {w[2]!r}") from err
        if not (math.isfinite(s) and math.isfinite(e)) or s < 0 or e < s:
            raise ManifestError(f"{where}: word {i} ({word!r}) has start {s} / end {e} (need "
                                f"0 <= start <= end)")
        if out and s < out[-1][1]:
            raise ManifestError(f"{where}: word {i} ({word!r}) starts at {s}, before word "
                                f"{i - 1} ({out[-1][1]}): words must be in time order")
        out.append([word, s, e])
    return out


def make_record(rid: str, words: list[list], text: str | None = None,
                file_name: str | None = None, **extra: Any) -> dict[str, Any]:
    """One output line (``text`` defaults to the words joined with spaces)."""
    rec: dict[str, Any] = {"id": rid, "aligned_text": words,
                           "text": text if text is not None else " ".join(w[0] for w in words)}
    if file_name is not None:
        rec["file_name"] = file_name
    rec.update(extra)
    return rec


def alignments_file(spec: str | Path) -> Path:
    """The JSONL of ``spec``: the file itself, or ``<folder>/aligned_text.jsonl``."""
    p = Path(spec)
    if p.is_dir():
        p = p / FILE
    if not p.is_file():
        raise ManifestError(f"{p}: no alignments file (run slam align-words first, or give its "
                            f"{FILE})")
    return p


def iter_alignments(spec: str | Path) -> Any:
    """Yield (id, words, "file line N") for each record of an alignments file, checked."""
    path = alignments_file(spec)
    seen: dict[str, int] = {}
    with open_text(path) as f:
        lines = f.read().split("\n")
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise ManifestError(f"{path} line {lineno}: not valid JSON ({e.msg})"
                                + (" (the last line is cut off: re-run slam align-words)"
                                   if lineno == len(lines) else "")) from e
        if not isinstance(rec, dict):
            raise ManifestError(f"{path} line {lineno}: expected a JSON object")
        where = f"{path} line {lineno}"
        rid = rec.get("id")
        if not isinstance(rid, (str, int)) or isinstance(rid, bool) or not str(rid).strip():
            raise ManifestError(f"{where}: needs an 'id' (the id of the utterance's units "
                                f"record), got {rid!r}")
        rid = str(rid)
        if rid in seen:
            raise ManifestError(f"{where}: id {rid!r} is also on line {seen[rid]} (one record "
                                f"per utterance)")
        seen[rid] = lineno
        words = rec.get("aligned_text", rec.get("words"))
        if words is None:
            raise ManifestError(f"{where}: no 'aligned_text' (list of [word, start, end])")
        yield rid, check_words(words, where), where


def read_alignments(spec: str | Path) -> dict[str, list[list]]:
    """``{id: [[word, start_s, end_s], ...]}`` of an alignments file (see :func:`iter_alignments`)."""
    return {rid: words for rid, words, _ in iter_alignments(spec)}
