"""Import/export the peer toolkit's (slamkit) unit files.

- features JSONL: ``{"units": [3, 49, ...], "duration": [1, 2, ...], "file_name": "..."}``
  (deduplicated units and run lengths at 25 Hz)
- tokens JSONL: ``{"file_name": "...", "audio_repr": "<Un3><Un49>..."}`` (deduplicated units;
  run lengths are not stored, so records imported from it have ``durations = None``)

Imported records get ``id`` = the file name's stem and ``path`` = ``file_name``.

Example:
    >>> parse_audio_repr("<Un3><Un49><Un7>")
    [3, 49, 7]
    >>> format_audio_repr([3, 49])
    '<Un3><Un49>'
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from slamlm.io import ManifestError, atomic_write_text, read_jsonl, write_jsonl

log = logging.getLogger(__name__)

_UNIT = re.compile(r"<Un(\d+)>")


def parse_audio_repr(text: str, where: str = "audio_repr") -> list[int]:
    """``"<Un3><Un49>"`` -> ``[3, 49]``; anything else in the string is an error."""
    units = [int(m) for m in _UNIT.findall(text)]
    rest = _UNIT.sub("", text).strip()
    if rest:
        raise ManifestError(f"{where}: unexpected text {rest[:40]!r} among <UnN> tokens "
                            f"(interleaved text is not a units file)")
    return units


def format_audio_repr(units: Iterable[int]) -> str:
    return "".join(f"<Un{int(u)}>" for u in units)


def _ints(x: Any, low: int) -> bool:
    """``x`` is a list of ints (not bools) all ``>= low``."""
    return isinstance(x, list) and all(
        isinstance(v, int) and not isinstance(v, bool) and v >= low for v in x)


def peer_to_record(r: dict[str, Any], where: str, encoder: str) -> dict[str, Any]:
    """One peer line (features or tokens) -> our units record."""
    name = r.get("file_name")
    if not isinstance(name, str) or not Path(name).stem:
        raise ManifestError(f"{where}: no 'file_name' (a non-empty audio file name string)")
    if "units" in r:
        units, durations = r["units"], r.get("duration")
        if not _ints(units, 0):
            raise ManifestError(f"{where}: 'units' must be a list of integers >= 0, got "
                                f"{str(units)[:40]}")
        if durations is not None and not _ints(durations, 1):
            raise ManifestError(f"{where}: 'duration' must be a list of integers >= 1 (frames "
                                f"per unit), got {str(durations)[:40]}")
        if durations is not None and len(durations) != len(units):
            raise ManifestError(f"{where}: {len(units)} units but {len(durations)} durations")
    elif "audio_repr" in r:
        if not isinstance(r["audio_repr"], str):
            raise ManifestError(f"{where}: 'audio_repr' must be a string of <UnN> tokens, got "
                                f"{type(r['audio_repr']).__name__}")
        units, durations = parse_audio_repr(r["audio_repr"], where), None
    else:
        raise ManifestError(f"{where}: neither 'units' (features) nor 'audio_repr' (tokens)")
    return {"id": Path(name).stem, "path": name, "units": units, "durations": durations,
            "n_frames": int(sum(durations)) if durations is not None else None, "sr": 16000,
            "encoder": encoder, "kmeans_hash": None}


def import_peer(path: str | Path, out: str | Path, encoder: str = "peer") -> Path:
    """Peer ``features.jsonl`` / ``tokens.jsonl`` -> ``<out>/units.jsonl``; returns ``out``."""
    path, out = Path(path), Path(out)
    records, seen = [], {}
    for i, r in enumerate(read_jsonl(path, cut_tail="error"), 1):
        rec = peer_to_record(r, f"{path} line {i}", encoder)
        if rec["id"] in seen:
            raise ManifestError(f"{path} line {i}: id {rec['id']!r} (from file_name stem) repeats "
                                f"line {seen[rec['id']]}")
        seen[rec["id"]] = i
        records.append(rec)
    out.mkdir(parents=True, exist_ok=True)
    write_jsonl(out / "units.jsonl", records)
    log.info("imported %d peer records from %s -> %s", len(records), path, out / "units.jsonl")
    return out


def record_to_peer(r: dict[str, Any], fmt: str) -> dict[str, Any]:
    """Our record -> a peer line (``fmt`` = "features" or "tokens")."""
    if fmt == "tokens":
        return {"file_name": r["path"], "audio_repr": format_audio_repr(r["units"])}
    if fmt == "features":
        if r.get("durations") is None:
            raise ManifestError(f"record {r['id']!r} has no durations (imported from a tokens "
                                f"file?): export it with --format tokens")
        return {"units": r["units"], "duration": r["durations"], "file_name": r["path"]}
    raise ValueError(f"peer format {fmt!r}: use 'features' or 'tokens'")


def export_peer(folder: str | Path, out: str | Path, fmt: str = "features") -> Path:
    """All records of a units folder -> one peer JSONL file (atomic)."""
    from slamlm.units.runner import read_units

    lines = [json.dumps(record_to_peer(r, fmt)) + "\n" for r in read_units(folder)]
    path = Path(out)
    if path.suffix == ".gz":
        return write_jsonl(path, [json.loads(x) for x in lines])
    atomic_write_text(path, "".join(lines))
    log.info("exported %d records as peer %s -> %s", len(lines), fmt, path)
    return path


@dataclass(frozen=True)
class PeerImportConfig:
    """``slam units import-peer``: a peer features.jsonl / tokens.jsonl -> our units folder."""

    file: str = ""  # the peer toolkit's features.jsonl or tokens.jsonl
    out: str = ""  # units folder to write
    encoder: str = "peer"  # encoder id to record in the units identity


@dataclass(frozen=True)
class PeerExportConfig:
    """``slam units export-peer``: our units folder -> the peer toolkit's JSONL."""

    folder: str = ""  # units folder (slam units output)
    out: str = ""  # JSONL file to write
    format: Literal["features", "tokens"] = "features"


def run_import_peer(cfg: PeerImportConfig) -> Path:
    if not cfg.file or not cfg.out:
        raise ValueError("slam units import-peer FILE --out FOLDER")
    return import_peer(cfg.file, cfg.out, encoder=cfg.encoder)


def run_export_peer(cfg: PeerExportConfig) -> Path:
    if not cfg.folder or not cfg.out:
        raise ValueError("slam units export-peer FOLDER --out FILE")
    return export_peer(cfg.folder, cfg.out, fmt=cfg.format)
