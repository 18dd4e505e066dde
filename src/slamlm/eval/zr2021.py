"""ZeroSpeech 2021 ``lexical/`` (sWUGGY) and ``syntactic/`` (sBLIMP) read straight from disk.

Layout: ``<root>/{lexical,syntactic}/{dev,test}/*.wav`` + ``gold.csv``. Rows are paired by
(id, voice) with ``correct`` 1 (positive) vs 0 (negative); the pair key is the gold ``id`` so a
pair's score is averaged over voices before averaging over ids. Breakdown: frequency band
(lexical) or ``type`` (syntactic).

Example:
    >>> pairs = read_zr2021("zerospeech2021/syntactic/dev")   # doctest: +SKIP
    >>> pairs[0].id, pairs[0].key, pairs[0].group["type"]     # doctest: +SKIP
    ('1_0_aaa/Bob', '1_0_aaa', 'anaphor_agreement')
"""

from __future__ import annotations

import csv
import os
from collections import defaultdict
from pathlib import Path

from slamlm.eval.pairs import Pair
from slamlm.io import ManifestError

LEXICAL_COLUMNS = ("id", "filename", "voice", "frequency", "correct")
SYNTACTIC_COLUMNS = ("filename", "type", "id", "voice", "correct")
AUDIO_SUFFIXES = (".wav", ".flac")
# word-frequency bands (occurrences in the LibriSpeech training text) used for the breakdown
FREQ_BANDS = ((0, 0, "oov"), (1, 5, "1-5"), (6, 20, "6-20"), (21, 100, "21-100"))


def frequency_band(freq: float) -> str:
    """Band name of a word frequency: ``oov``, ``1-5``, ``6-20``, ``21-100`` or ``>100``.

    Example:
        >>> frequency_band(0), frequency_band(7), frequency_band(500)
        ('oov', '6-20', '>100')
    """
    for lo, hi, name in FREQ_BANDS:
        if lo <= freq <= hi:
            return name
    return ">100"


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


def read_zr2021(path: str | Path, kind: str | None = None, subset: str = "dev") -> list[Pair]:
    """Pairs of a ZeroSpeech 2021 lexical or syntactic folder (see module doc)."""
    folder = resolve_zr2021_dir(path, kind, subset)
    gold = folder / "gold.csv"
    if kind is None:
        kind = next((p for p in ("lexical", "syntactic") if p in folder.parts), None)
    if kind is None:
        with open(gold, encoding="utf-8") as f:
            kind = "lexical" if "frequency" in f.readline() else "syntactic"
    rows = _read_gold(gold, LEXICAL_COLUMNS if kind == "lexical" else SYNTACTIC_COLUMNS)
    present = set(os.listdir(folder))
    groups: dict[tuple[str, str], dict[str, list[tuple[int, dict[str, str]]]]] = defaultdict(
        lambda: {"1": [], "0": []}
    )
    for line, row in enumerate(rows, 2):
        if row["correct"] not in ("0", "1"):
            raise ManifestError(f"{gold} line {line}: correct must be 0 or 1, got {row['correct']!r}")
        row["path"] = _file_for(row["filename"], folder, present, gold, line)
        groups[(row["id"], row["voice"])][row["correct"]].append((line, row))
    pairs = []
    for (gid, voice), sides in groups.items():
        if not sides["1"] or not sides["0"]:
            line, row = (sides["1"] or sides["0"])[0]
            missing = "correct=0 (negative)" if not sides["0"] else "correct=1 (positive)"
            raise ManifestError(
                f"{gold} line {line}: {row['filename']} (id {gid}, voice {voice}) has no "
                f"{missing} partner; add it or delete the row"
            )
        pos = sides["1"][0][1]
        for n, (_, neg) in enumerate(sides["0"]):
            if kind == "lexical":
                group = {"frequency_band": frequency_band(float(pos["frequency"] or 0)),
                         "voice": voice, "word": pos.get("word", "")}
            else:
                group = {"type": pos["type"], "subtype": pos.get("subtype", ""), "voice": voice}
            suffix = f"#{n}" if len(sides["0"]) > 1 else ""
            pairs.append(Pair(f"{gid}/{voice}{suffix}", pos["path"], neg["path"], group, gid))
    return pairs


def breakdown_key(kind: str) -> str:
    """The group field a ZR2021 task is broken down by."""
    return "frequency_band" if kind == "lexical" else "type"
