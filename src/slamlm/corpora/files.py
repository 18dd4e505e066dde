"""Plain audio files: a folder, a glob, a JSONL manifest (``path``[, ``id``, ``text``]) or a
text file of paths; a folder in the LibriSpeech layout (``spk/chapter/spk-chapter-utt.flac``
beside ``spk-chapter.trans.txt``) gets each utterance's transcript as text.

Ids are the path relative to the folder without extension (or the manifest's ``id``).

Example:
    >>> # list_files("LibriSpeech/dev-clean")[0].id   # '1272/128104/1272-128104-0000'
"""

from __future__ import annotations

import json
from pathlib import Path

from slamlm.audio import find_audio, record_id
from slamlm.corpora.item import AudioItem, CorpusError
from slamlm.io import read_jsonl

LIST_SUFFIXES = (".txt", ".lst", ".list", ".scp")


def _rid(path: Path, root: Path, where: str) -> str:
    """``record_id`` of a listed path; a path with no file name is an error naming the line."""
    if not path.name or path.name in (".", "..") or path.resolve() == root.resolve():
        raise CorpusError(f"{where}: {str(path)!r} names no file (give the path of an audio "
                          f"file, one per line)")
    try:
        return record_id(path, root)
    except ValueError as e:
        raise CorpusError(f"{where}: cannot make an id from {str(path)!r} ({e})") from e


def list_manifest(p: Path) -> list[AudioItem]:
    """Items of a JSONL manifest: ``path`` (relative to the manifest), optional ``id``, ``text``."""
    items = []
    for i, r in enumerate(read_jsonl(p, cut_tail="error"), 1):
        if "path" not in r:
            raise CorpusError(f"{p} line {i}: record has no 'path'")
        if not isinstance(r["path"], str) or not r["path"]:
            raise CorpusError(f"{p} line {i}: 'path' must be a non-empty string, got "
                              f"{r['path']!r}")
        if "\0" in r["path"]:
            raise CorpusError(f"{p} line {i}: NUL byte in 'path'")
        rid = r.get("id")
        if rid is not None and (isinstance(rid, bool) or not isinstance(rid, (str, int))
                                or not str(rid).strip()):
            raise CorpusError(f"{p} line {i}: 'id' must be a non-empty string, got "
                              f"{json.dumps(rid)[:40]} (or leave it out: the id is then "
                              f"the path without extension)")
        path = Path(r["path"]) if Path(r["path"]).is_absolute() else p.parent / r["path"]
        text = r.get("text") if isinstance(r.get("text"), str) else None
        items.append(AudioItem(str(rid or _rid(path, p.parent, f"{p} line {i}")), str(path),
                               path=str(path), text=text))
    return items


def list_pathlist(p: Path) -> list[AudioItem]:
    """Items of a UTF-8 text file with one audio path per line (relative to the file)."""
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise CorpusError(f"{p}: not a UTF-8 text list of audio paths (byte {e.start}: "
                          f"{e.reason}); give one path per line") from e
    items = []
    for i, ln in enumerate(text.split("\n"), 1):  # lines end at \n only (not \v, \f...)
        ln = ln.strip()
        if not ln:
            continue
        if "\0" in ln:
            raise CorpusError(f"{p} line {i}: NUL byte in a path; give one path per line")
        q = Path(ln) if Path(ln).is_absolute() else p.parent / ln
        items.append(AudioItem(_rid(q, p.parent, f"{p} line {i}"), str(q), path=str(q)))
    return items


def list_files(spec: str | Path) -> list[AudioItem]:
    """Audio files of a folder or glob (sorted); LibriSpeech transcripts attached as text."""
    files = find_audio(spec)
    texts = librispeech_texts(spec) if Path(str(spec)).is_dir() else {}
    return [AudioItem(record_id(q, spec), str(q), path=str(q), text=texts.get(q.stem))
            for q in files]


def librispeech_texts(root: str | Path) -> dict[str, str]:
    """Utterance stem -> transcript from every ``*.trans.txt`` under ``root``.

    Each line is ``<spk>-<chapter>-<utt> TEXT``; a line without text is an error naming it.
    """
    out: dict[str, str] = {}
    for t in sorted(Path(root).rglob("*.trans.txt")):
        try:
            lines = t.read_text(encoding="utf-8").split("\n")
        except UnicodeDecodeError as e:
            raise CorpusError(f"{t}: not UTF-8 (byte {e.start}); a LibriSpeech transcript "
                              f"has lines '<utterance-id> TEXT'") from e
        for i, ln in enumerate(lines, 1):
            if not ln.strip():
                continue
            key, _, text = ln.strip().partition(" ")
            if not text.strip():
                raise CorpusError(f"{t} line {i}: {key!r} has no text (expected "
                                  f"'<utterance-id> TEXT')")
            out[key] = " ".join(text.split())
    return out
