"""WebDataset-style tar shards: members ``<key>.flac`` / ``<key>.wav`` (the audio) with
optional ``<key>.txt`` or ``<key>.json`` (``{"text": ...}``) beside them.

The key is the member name up to the first dot of its file name (WebDataset's rule), and is
the id. Shards are given as one ``.tar``, a brace pattern (``shards/train-{000..009}.tar``) or a
folder of ``.tar`` files. Listing reads the tar headers and the small text members only; each
audio member is read later by its byte offset (the tar is not decompressed: plain ``.tar``).

Example:
    >>> # list_tars("shards/train-{000..001}.tar")[0].source   # 'shards/train-000.tar:a.flac'
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

from slamlm.corpora.item import AudioItem, CorpusError, need

AUDIO_EXT = ("flac", "wav", "mp3", "ogg", "opus")
TEXT_EXT = ("txt", "json")


def tar_files(spec: str | Path) -> list[Path]:
    """The shards of ``spec`` (a .tar, a brace pattern, or a folder), in order."""
    s = str(spec)
    if "{" in s:
        braceexpand = need("braceexpand", "a brace pattern of tar shards")
        files = [Path(x) for x in braceexpand.braceexpand(s)]
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            raise CorpusError(f"{spec}: {len(missing)} of {len(files)} shards do not exist "
                              f"(first: {missing[0]})")
        return files
    p = Path(s)
    files = [p] if p.is_file() else sorted(p.rglob("*.tar"))
    if not files:
        raise CorpusError(f"{spec}: no .tar shards")
    return files


def split_name(name: str) -> tuple[str, str]:
    """WebDataset's (key, extension): ``a/b.c.flac`` -> ``("a/b", "c.flac")``."""
    head, _, base = name.rpartition("/")
    stem, _, ext = base.partition(".")
    return (f"{head}/{stem}" if head else stem), ext.lower()


def _text(data: bytes, ext: str, where: str) -> str | None:
    try:
        s = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise CorpusError(f"{where}: not UTF-8 text (byte {e.start})") from e
    if ext == "json":
        try:
            obj = json.loads(s)
        except json.JSONDecodeError as e:
            raise CorpusError(f"{where}: not valid JSON ({e.msg})") from e
        s = obj.get("text") if isinstance(obj, dict) else None
        if not isinstance(s, str):
            return None
    return " ".join(s.split()) or None


def list_tar(file: Path) -> list[AudioItem]:
    """Items of one shard; a key without an audio member becomes an item that fails."""
    if file.name.endswith((".tar.gz", ".tgz")):
        raise CorpusError(f"{file}: compressed tar; give plain .tar shards (gunzip it first) so "
                          f"members can be read by offset")
    groups: dict[str, dict[str, tuple[int, int, str]]] = {}
    texts: dict[str, str | None] = {}
    try:
        with tarfile.open(file, "r:") as tf:
            for m in tf:
                if not m.isfile():
                    continue
                key, ext = split_name(m.name)
                if ext in TEXT_EXT and key not in texts:
                    texts[key] = _text(tf.extractfile(m).read(), ext, f"{file}:{m.name}")
                groups.setdefault(key, {})[ext] = (m.offset_data, m.size, m.name)
    except tarfile.TarError as e:
        raise CorpusError(f"{file}: not a readable tar file ({e})") from e
    items = []
    for key, members in groups.items():
        audio = next((members[e] for e in AUDIO_EXT if e in members), None)
        if audio is None:  # reported per item (failures.jsonl), not a dead listing
            items.append(AudioItem(key, f"{file}:{key}", text=texts.get(key), ref=(
                "missing", f"no audio member (has {sorted(members)}; expected one of "
                           f"{list(AUDIO_EXT)})")))
            continue
        start, size, name = audio
        items.append(AudioItem(key, f"{file}:{name}", ref=("tar", str(file), start, size),
                               text=texts.get(key)))
    return items


def list_tars(spec: str | Path) -> list[AudioItem]:
    """Items of every shard of ``spec``."""
    return [it for f in tar_files(spec) for it in list_tar(f)]
