"""ZeroSpeech 2021 ``lexical/`` (sWUGGY) and ``syntactic/`` (sBLIMP), scored as the official scorer.

Layout: ``<root>/{lexical,syntactic}/{dev,test}/*.wav`` + ``gold.csv``. Pairing and averaging
follow the official ``zerospeech2021`` evaluation code:

- lexical: rows are paired on (id, voice), every correct=1 row with every correct=0 row (the
  official merge); a pair's key is the ``id``, so scores are averaged over voices first.
  Frequency bands are the official half-open bins [0,1) ``oov``, [1,5) ``1-5``, [5,20)
  ``6-20``, [20,100) ``21-100``, [100,inf) ``>100`` (labels are not inclusive ranges).
- syntactic: the key is (type, subtype, id); ids repeat across subtypes, so pairing on the
  id alone would mix sentences. Each (type, subtype, id, voice) must hold exactly one
  correct=1 and one correct=0 row; anything else is refused, naming the file and key.

:func:`write_submission` writes the official submission file (``<task>/<subset>.txt``, one
``<filename> <log-prob>`` line per file) so ``zerospeech2021-evaluate`` can check our numbers.

Example:
    >>> pairs = read_zr2021("zerospeech2021/syntactic/dev")   # doctest: +SKIP
    >>> pairs[0].id, pairs[0].key                             # doctest: +SKIP
    ('anaphor_agreement/anaphor_gender_agreement/1/Bob', 'anaphor_agreement/anaphor_gender_agreement/1')
"""

from __future__ import annotations

import csv
import logging
import os
from collections import defaultdict
from pathlib import Path

from slamlm.eval.pairs import Pair
from slamlm.io import ManifestError, atomic_write_text, reading

log = logging.getLogger(__name__)

LEXICAL_COLUMNS = ("id", "filename", "voice", "frequency", "correct")
SYNTACTIC_COLUMNS = ("filename", "type", "subtype", "id", "voice", "correct")
AUDIO_SUFFIXES = (".wav", ".flac")
# word-frequency bands (occurrences in LibriSpeech): official half-open bins [lo, next lo)
FREQ_BANDS = ((0, "oov"), (1, "1-5"), (5, "6-20"), (20, "21-100"), (100, ">100"))


def frequency_band(freq: float | str | None) -> str:
    """Official band of a word frequency; ``unknown`` for a missing or negative one.

    Example:
        >>> [frequency_band(f) for f in (0, 4, 5, 19, 20, 99, 100)]
        ['oov', '1-5', '6-20', '6-20', '21-100', '21-100', '>100']
    """
    try:
        f = float(freq)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "unknown"
    name = "unknown"
    for lo, band in FREQ_BANDS:
        if f >= lo:
            name = band
    return name


def resolve_zr2021_dir(path: str | Path, kind: str | None = None, subset: str = "dev") -> Path:
    """The folder holding ``gold.csv``: accepts the benchmark root, ``lexical/`` or ``lexical/dev``.

    ``kind`` ("lexical"/"syntactic") picks the task when ``path`` is the root holding both.
    """
    path = Path(path)
    if (path / "gold.csv").is_file():
        return path
    if (path / subset / "gold.csv").is_file():
        return path / subset
    tasks = [t for t in ("lexical", "syntactic") if (path / t).is_dir()]
    if kind in tasks:
        tasks = [kind]
    if len(tasks) == 1:
        return resolve_zr2021_dir(path / tasks[0], kind, subset)
    if len(tasks) > 1:
        raise ManifestError(
            f"{path}: holds both lexical/ and syntactic/; name the bench swuggy=... or sblimp=... "
            f"or point at {path / 'syntactic'}"
        )
    raise ManifestError(
        f"{path}: no gold.csv here nor in {path / subset}/ (ZeroSpeech 2021 layout expected; the "
        f"test subset ships without gold labels, use dev or pass a folder with gold.csv)"
    )


def _read_gold(gold: Path, required: tuple[str, ...]) -> list[dict[str, str]]:
    if not gold.is_file():
        raise ManifestError(f"{gold}: not a file (a ZeroSpeech 2021 gold.csv is expected here)")
    with reading(gold, "a ZeroSpeech 2021 gold.csv is UTF-8 CSV with a header row"):
        return _parse_gold(gold, required)


def _parse_gold(gold: Path, required: tuple[str, ...]) -> list[dict[str, str]]:
    with open(gold, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        header = [h.strip() for h in (reader.fieldnames or [])]
        missing = [c for c in required if c not in header]
        if missing:
            raise ManifestError(
                f"{gold}: missing column {missing[0]!r} (found: {', '.join(header) or 'nothing'}); "
                f"a ZeroSpeech 2021 gold.csv needs {', '.join(required)}"
            )
        reader.fieldnames = header
        return [{k: (v or "").strip() for k, v in row.items() if k} for row in reader]


def _file_for(name: str, folder: Path, present: set[str], gold: Path, line: int) -> str:
    candidates = [name] if Path(name).suffix.lower() in AUDIO_SUFFIXES else []
    candidates += [name + s for s in AUDIO_SUFFIXES]
    for c in candidates:
        if c in present:
            return str(folder / c)
    raise ManifestError(
        f"{gold} line {line}: audio file {folder / candidates[0]} does not exist (incomplete "
        f"download? fetch it or delete that row from gold.csv)"
    )


def _pair_key(kind: str, row: dict[str, str]) -> tuple[str, ...]:
    """Rows with the same key are the two sides of a pair (plus the voice)."""
    if kind == "lexical":
        return (row["id"], row["voice"])
    return (row["type"], row["subtype"], row["id"], row["voice"])


def _describe(kind: str, key: tuple[str, ...]) -> str:
    names = ("id", "voice") if kind == "lexical" else ("type", "subtype", "id", "voice")
    return ", ".join(f"{n}={v!r}" for n, v in zip(names, key))


Side = list[tuple[int, dict[str, str]]]


def _check_sides(kind: str, gold: Path, key: tuple[str, ...], sides: dict[str, Side]) -> None:
    """Refuse a key with a missing side, or (syntactic) with more than one row on a side."""
    for have, want, what in (("1", "0", "correct=0 (negative)"), ("0", "1", "correct=1 (positive)")):
        if sides[have] and not sides[want]:
            line, row = sides[have][0]
            raise ManifestError(f"{gold} line {line}: {row['filename']} ({_describe(kind, key)}) "
                                f"has no {what} partner; add it or delete the row")
    for side in ("1", "0"):
        if kind == "syntactic" and len(sides[side]) > 1:
            lines = ", ".join(str(n) for n, _ in sides[side])
            raise ManifestError(
                f"{gold} lines {lines}: {len(sides[side])} correct={side} rows for the key "
                f"({_describe(kind, key)}); the official scorer pairs exactly one correct=1 with "
                f"one correct=0 row per (type, subtype, id, voice): delete the extra rows or give "
                f"them their own id")


def _group(kind: str, pos: dict[str, str], voice: str) -> dict[str, str]:
    if kind == "lexical":
        return {"frequency_band": frequency_band(pos["frequency"] or None), "voice": voice,
                "word": pos.get("word", "")}
    return {"type": pos["type"], "subtype": pos["subtype"], "voice": voice}


def _warn_if_unlike_official_order(gold: Path, rows: list[dict[str, str]], kind: str) -> None:
    """The official syntactic scorer pairs the n-th correct=1 row with the n-th correct=0 row."""
    pos = [(n, r) for n, r in enumerate(rows, 2) if r["correct"] == "1"]
    neg = [(n, r) for n, r in enumerate(rows, 2) if r["correct"] == "0"]
    for (a, p), (b, q) in zip(pos, neg):
        if _pair_key(kind, p) != _pair_key(kind, q):
            log.warning("%s: the official scorer pairs rows by position (n-th correct=1 with n-th "
                        "correct=0) and would pair line %d with line %d, which have other keys; "
                        "our keyed pairs are right, its numbers will differ", gold, a, b)
            return


def read_zr2021(path: str | Path, kind: str | None = None, subset: str = "dev") -> list[Pair]:
    """Pairs of a ZeroSpeech 2021 lexical or syntactic folder (see module doc)."""
    folder = resolve_zr2021_dir(path, kind, subset)
    gold = folder / "gold.csv"
    if kind is None:
        kind = next((p for p in ("lexical", "syntactic") if p in folder.parts), None)
    if kind is None:
        with reading(gold, "a ZeroSpeech 2021 gold.csv is UTF-8 CSV with a header row"), \
                open(gold, encoding="utf-8") as f:
            kind = "lexical" if "frequency" in f.readline() else "syntactic"
    rows = _read_gold(gold, LEXICAL_COLUMNS if kind == "lexical" else SYNTACTIC_COLUMNS)
    present = set(os.listdir(folder))
    groups: dict[tuple[str, ...], dict[str, Side]] = defaultdict(lambda: {"1": [], "0": []})
    for line, row in enumerate(rows, 2):
        if row["correct"] not in ("0", "1"):
            raise ManifestError(f"{gold} line {line}: correct must be 0 or 1, got {row['correct']!r}")
        row["path"] = _file_for(row["filename"], folder, present, gold, line)
        groups[_pair_key(kind, row)][row["correct"]].append((line, row))
    pairs = []
    for key, sides in groups.items():
        _check_sides(kind, gold, key, sides)
        voice, score_key = key[-1], "/".join(key[:-1])
        both = [(p, n) for _, p in sides["1"] for _, n in sides["0"]]  # lexical: official merge
        for i, (pos, neg) in enumerate(both):
            suffix = f"#{i}" if len(both) > 1 else ""
            pairs.append(Pair(f"{score_key}/{voice}{suffix}", pos["path"], neg["path"],
                              _group(kind, pos, voice), score_key))
    if not pairs:
        raise ManifestError(f"{gold}: no rows after the header (no pairs to score); give the "
                            f"benchmark's full gold.csv")
    if kind == "syntactic":
        _warn_if_unlike_official_order(gold, rows, kind)
    return pairs


def submission_scores(records: list[dict], variant: str = "mean") -> dict[str, float]:
    """``{file name without extension: log-prob}`` from scored pair records (official format).

    Example:
        >>> submission_scores([{"positive": "d/a.wav", "negative": "d/b.wav",
        ...                     "logp_pos_mean": -1.5, "logp_neg_mean": -2.0}])
        {'a': -1.5, 'b': -2.0}
    """
    scores: dict[str, float] = {}
    for r in records:
        for side, lp in (("positive", "pos"), ("negative", "neg")):
            scores[Path(r[side]).stem] = float(r[f"logp_{lp}_{variant}"])
    return scores


def write_submission(folder: str | Path, task: str, subset: str, scores: dict[str, float]) -> Path:
    """``<folder>/<task>/<subset>.txt``: ``<file> <score>`` lines, as ``zerospeech2021`` reads."""
    lines = "".join(f"{name} {score!r}\n" for name, score in sorted(scores.items()))
    return atomic_write_text(Path(folder) / task / f"{subset}.txt", lines)


def breakdown_key(kind: str) -> str:
    """The group field a ZR2021 task is broken down by."""
    return "frequency_band" if kind == "lexical" else "type"
