"""The unit of every modelling benchmark: a (positive, negative) pair, plus the pairs manifest.

A side is an audio path (str) or a list of unit ids (already extracted). ``key`` groups pairs
that are averaged together before the overall mean (ZR2021: the gold id, averaged over voices).

Manifest (``pairs.jsonl``), one pair a line, paths relative to the manifest::

    {"id": "s1", "positive": "a/1_correct.wav", "negative": "a/1_wrong.wav", "group": {"t": "x"}}
    {"id": "s2", "positive": [3, 7, 7, 1], "negative": [3, 9], "key": "s2"}

Example:
    >>> p = Pair("s1", [1, 2], [2, 1], {"type": "x"})
    >>> p.key
    's1'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slamlm.io import ManifestError, read_jsonl

Side = str | list[int]


@dataclass(frozen=True)
class Pair:
    """One scored comparison: log p(positive) should beat log p(negative)."""

    id: str
    positive: Side
    negative: Side
    group: dict[str, Any] = field(default_factory=dict)
    key: str = ""

    def __post_init__(self) -> None:
        if not self.key:
            object.__setattr__(self, "key", self.id)


def _side(value: Any, base: Path, where: str) -> Side:
    if isinstance(value, str):
        path = Path(value)
        path = path if path.is_absolute() else base / path
        if not path.is_file():
            raise ManifestError(f"{where}: audio file {path} does not exist (paths are relative "
                                f"to the manifest's folder)")
        return str(path)
    if isinstance(value, list) and all(isinstance(u, int) and not isinstance(u, bool) for u in value):
        if not value:
            raise ManifestError(f"{where}: empty unit list")
        return list(value)
    raise ManifestError(f"{where}: expected an audio path or a list of integer units, "
                        f"got {type(value).__name__}")


def read_pairs_manifest(path: str | Path) -> list[Pair]:
    """Pairs from a ``pairs.jsonl`` manifest (``id``, ``positive``, ``negative``, opt. ``group``/``key``)."""
    path = Path(path)
    if path.is_dir():
        path = path / "pairs.jsonl"
    pairs: list[Pair] = []
    seen: set[str] = set()
    for n, rec in enumerate(read_jsonl(path, cut_tail="error"), 1):
        where = f"{path} record {n}"
        missing = [k for k in ("id", "positive", "negative") if k not in rec]
        if missing:
            raise ManifestError(f"{where}: missing field {missing[0]!r} (need id, positive, negative)")
        pid = str(rec["id"])
        if pid in seen:
            raise ManifestError(f"{where}: duplicate id {pid!r}; ids must be unique")
        seen.add(pid)
        group = rec.get("group") or {}
        if not isinstance(group, dict):
            raise ManifestError(f"{where}: group must be an object, got {type(group).__name__}")
        pairs.append(Pair(pid, _side(rec["positive"], path.parent, f"{where} positive"),
                          _side(rec["negative"], path.parent, f"{where} negative"),
                          group, str(rec.get("key") or pid)))
    if not pairs:
        raise ManifestError(f"{path}: no pairs in the manifest")
    return pairs
