"""What ``slam units`` reads: (id, path) pairs from a folder, glob, manifest or path list.

Ids are stable (relative path without extension, or the manifest's ``id``) and must be
unique; a clash names both files.

Example:
    >>> # list_inputs("data/audio")  # [("spk1/utt1", "data/audio/spk1/utt1.flac"), ...]
"""

from __future__ import annotations

import json
from pathlib import Path

from slamlm.audio import find_audio, record_id
from slamlm.io import ManifestError, read_jsonl


def _rid(path: Path, root: Path, where: str) -> str:
    """``record_id`` of a listed path; a path with no file name is an error naming the line."""
    if not path.name or path.name in (".", "..") or path.resolve() == root.resolve():
        raise ManifestError(f"{where}: {str(path)!r} names no file (give the path of an audio "
                            f"file, one per line)")
    try:
        return record_id(path, root)
    except ValueError as e:
        raise ManifestError(f"{where}: cannot make an id from {str(path)!r} ({e})") from e


def list_inputs(spec: str | Path) -> list[tuple[str, str]]:
    """(id, path) pairs from a folder, glob, JSONL manifest or text file of paths."""
    s = str(spec)
    p = Path(s)
    if p.is_file() and (s.endswith(".jsonl") or s.endswith(".jsonl.gz")):
        items = []
        for i, r in enumerate(read_jsonl(p, cut_tail="error"), 1):
            if "path" not in r:
                raise ManifestError(f"{p} line {i}: record has no 'path'")
            if not isinstance(r["path"], str) or not r["path"]:
                raise ManifestError(f"{p} line {i}: 'path' must be a non-empty string, got "
                                    f"{r['path']!r}")
            if "\0" in r["path"]:
                raise ManifestError(f"{p} line {i}: NUL byte in 'path'")
            rid = r.get("id")
            if rid is not None and (isinstance(rid, bool) or not isinstance(rid, (str, int))
                                    or not str(rid).strip()):
                raise ManifestError(f"{p} line {i}: 'id' must be a non-empty string, got "
                                    f"{json.dumps(rid)[:40]} (or leave it out: the id is then "
                                    f"the path without extension)")
            path = Path(r["path"]) if Path(r["path"]).is_absolute() else p.parent / r["path"]
            items.append((str(r.get("id") or _rid(path, p.parent, f"{p} line {i}")), str(path)))
    elif p.is_file() and p.suffix in (".txt", ".lst", ".list", ".scp"):
        try:
            text = p.read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            raise ManifestError(f"{p}: not a UTF-8 text list of audio paths (byte {e.start}: "
                                f"{e.reason}); give one path per line") from e
        items = []
        for i, ln in enumerate(text.split("\n"), 1):  # lines end at \n only (not \v, \f...)
            ln = ln.strip()
            if not ln:
                continue
            if "\0" in ln:
                raise ManifestError(f"{p} line {i}: NUL byte in a path; give one path per line")
            q = Path(ln) if Path(ln).is_absolute() else p.parent / ln
            items.append((_rid(q, p.parent, f"{p} line {i}"), str(q)))
    else:
        items = [(record_id(q, spec), str(q)) for q in find_audio(spec)]
    seen: dict[str, str] = {}
    for rid, path in items:
        if rid in seen:
            raise ManifestError(f"{spec}: id {rid!r} is used by both {seen[rid]} and {path} "
                                f"(give each file a unique id in a manifest)")
        seen[rid] = path
    if not items:
        raise ManifestError(f"{spec}: no audio files found")
    return items
