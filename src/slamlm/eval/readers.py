"""Benchmark readers and layout auto-detection: ZR2021, StoryCloze, SALMon, pairs manifest.

Every reader returns ``list[Pair]`` (see :mod:`slamlm.eval.pairs`); :func:`read_benchmark`
looks at a folder, picks the reader and says which group field to break results down by.

Example:
    >>> bench = read_benchmark("data/sSC", name="ssc")           # doctest: +SKIP
    >>> bench.kind, len(bench.pairs), bench.breakdown            # doctest: +SKIP
    ('storycloze', 1871, [])
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from slamlm.eval.pairs import Pair, read_pairs_manifest
from slamlm.eval.zr2021 import breakdown_key, read_zr2021, resolve_zr2021_dir
from slamlm.io import ManifestError

SALMON_PARTS = (
    "bg_alignment", "bg_all_consistency", "bg_domain_consistency", "gender_consistency",
    "rir_consistency", "sentiment_alignment", "sentiment_consistency", "speaker_consistency",
)
AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".mp3"}
_CLOZE_RE = re.compile(r"^(\d+)_(.+)$")
_SALMON_RE = re.compile(r"^sample_(\d+)_([01])$")
NEGATIVE_WORDS = {"incorrect", "wrong", "neg", "negative", "false", "bad", "distractor", "0"}
POSITIVE_WORDS = {"correct", "pos", "positive", "true", "right", "good", "1"}


@dataclass
class BenchmarkSet:
    """Pairs of one benchmark plus how to report them."""

    kind: str
    root: Path
    pairs: list[Pair]
    breakdown: list[str] = field(default_factory=list)


def _audio_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)


def cloze_polarity(name: str) -> bool | None:
    """True for a positive name (``correct``), False for negative (``wrong``), None if unclear.

    Example:
        >>> cloze_polarity("story_correct"), cloze_polarity("incorrect"), cloze_polarity("x")
        (True, False, None)
    """
    words = set(re.split(r"[^a-z0-9]+", name.lower())) - {""}
    neg, pos = bool(words & NEGATIVE_WORDS), bool(words & POSITIVE_WORDS)
    if neg == pos:
        return None
    return pos


def read_storycloze(folder: str | Path) -> list[Pair]:
    """``<int>_<name>.wav`` files paired by integer prefix; the name says which is positive."""
    folder = Path(folder)
    by_prefix: dict[int, list[Path]] = defaultdict(list)
    for p in _audio_files(folder):
        m = _CLOZE_RE.match(p.stem)
        if not m:
            raise ManifestError(f"{p}: not named <int>_<name> (StoryCloze layout); rename it or "
                                f"list the pairs in a pairs.jsonl manifest")
        by_prefix[int(m.group(1))].append(p)
    pairs = []
    for idx in sorted(by_prefix):
        files = by_prefix[idx]
        if len(files) != 2:
            what = "has no partner" if len(files) == 1 else f"is one of {len(files)} files"
            raise ManifestError(
                f"{files[0]}: unpaired StoryCloze file ({what} with prefix {idx}_; each prefix "
                f"needs exactly one correct and one wrong ending): add/remove files or use pairs.jsonl"
            )
        pol = [cloze_polarity(_CLOZE_RE.match(f.stem).group(2)) for f in files]
        if None in pol or pol[0] == pol[1]:
            raise ManifestError(
                f"{files[0]} / {files[1].name}: cannot tell which is the correct ending from the "
                f"names (use words like correct/pos/true vs wrong/neg/false, or a pairs.jsonl)"
            )
        pos, neg = (files[0], files[1]) if pol[0] else (files[1], files[0])
        pairs.append(Pair(str(idx), str(pos), str(neg), {}))
    if not pairs:
        raise ManifestError(f"{folder}: no <int>_<name> audio files found")
    return pairs


def _salmon_part(folder: Path, part: str) -> list[Pair]:
    sides: dict[int, dict[str, Path]] = defaultdict(dict)
    for p in _audio_files(folder):
        m = _SALMON_RE.match(p.stem)
        if not m:
            raise ManifestError(f"{p}: not named sample_<idx>_<0|1> (SALMon layout); rename or "
                                f"remove it")
        sides[int(m.group(1))][m.group(2)] = p
    pairs = []
    for idx in sorted(sides):
        s = sides[idx]
        if len(s) != 2:
            only = next(iter(s.values()))
            other = "1" if "0" in s else "0"
            raise ManifestError(f"{only}: unpaired SALMon file (sample_{idx}_{other} is missing); "
                                f"add it or remove this file")
        pairs.append(Pair(f"{part}/sample_{idx}", str(s["0"]), str(s["1"]), {"part": part}))
    return pairs


def read_salmon(root: str | Path) -> list[Pair]:
    """SALMon: ``<part>/sample_<idx>_<0|1>.wav`` (0 positive) for each of the parts present."""
    root = Path(root)
    if _is_salmon_part(root):
        return _salmon_part(root, root.name)
    parts = [d for d in sorted(root.iterdir()) if d.is_dir() and _is_salmon_part(d)]
    if not parts:
        raise ManifestError(f"{root}: no SALMon part folders ({', '.join(SALMON_PARTS)})")
    return [p for d in parts for p in _salmon_part(d, d.name)]


def _is_salmon_part(folder: Path) -> bool:
    if folder.name in SALMON_PARTS:
        return True
    return any(_SALMON_RE.match(p.stem) for p in folder.glob("sample_*_[01].*"))


def detect_layout(path: str | Path, name: str | None = None) -> str:
    """``manifest`` | ``zr2021`` | ``salmon`` | ``storycloze`` for a benchmark path."""
    path = Path(path)
    if path.is_file():
        if path.suffix in (".jsonl", ".gz"):
            return "manifest"
        raise ManifestError(f"{path}: a benchmark is a folder or a pairs .jsonl manifest")
    if not path.is_dir():
        raise ManifestError(f"{path}: no such benchmark folder")
    if (path / "pairs.jsonl").is_file():
        return "manifest"
    if (path / "gold.csv").is_file() or any(
        (path / d).is_dir() for d in ("lexical", "syntactic", "dev", "test")
    ):
        return "zr2021"
    subdirs = [d for d in path.iterdir() if d.is_dir()]
    if _is_salmon_part(path) or any(_is_salmon_part(d) for d in subdirs):
        return "salmon"
    if any(_CLOZE_RE.match(p.stem) for p in _audio_files(path)):
        return "storycloze"
    raise ManifestError(
        f"{path}: unknown benchmark layout; expected ZeroSpeech 2021 (gold.csv), SALMon "
        f"(<part>/sample_<i>_<0|1>.wav), StoryCloze (<int>_<name>.wav) or a pairs.jsonl manifest"
    )


def _zr_kind(name: str | None) -> str | None:
    n = (name or "").lower()
    if "wuggy" in n or "lexical" in n:
        return "lexical"
    if "blimp" in n or "syntactic" in n:
        return "syntactic"
    return None


def read_benchmark(path: str | Path, name: str | None = None, subset: str = "dev") -> BenchmarkSet:
    """Detect the layout of ``path`` and read its pairs; ``name`` (e.g. sblimp) picks a ZR task."""
    path = Path(path)
    layout = detect_layout(path, name)
    if layout == "manifest":
        pairs = read_pairs_manifest(path)
        values: dict[str, set] = defaultdict(set)
        for p in pairs:
            for k, v in p.group.items():
                if isinstance(v, (str, int, bool)):
                    values[k].add(v)
        breakdown = sorted(k for k, vs in values.items() if 1 < len(vs) <= 100)
        return BenchmarkSet("manifest", path, pairs, breakdown)
    if layout == "zr2021":
        folder = resolve_zr2021_dir(path, _zr_kind(name), subset)
        pairs = read_zr2021(folder, None, subset)  # task from folder name or header
        kind = "lexical" if "frequency_band" in pairs[0].group else "syntactic"
        return BenchmarkSet(f"zr2021-{kind}", folder, pairs, [breakdown_key(kind)])
    if layout == "salmon":
        return BenchmarkSet("salmon", path, read_salmon(path), ["part"])
    return BenchmarkSet("storycloze", path, read_storycloze(path), [])
