"""One entry point for every container: :func:`list_items` (audio) and :func:`list_texts`.

Formats (``--input-format``; ``auto`` picks by the spec):

=============  ==============================================================================
files          a folder or glob of audio files (LibriSpeech ``*.trans.txt`` give text)
manifest       a ``.jsonl[.gz]`` of ``{"path"[, "id", "text"]}``
list           a ``.txt``/``.lst``/``.scp`` of audio paths
hf             a ``Dataset``/``DatasetDict.save_to_disk`` folder (``--split`` for a dict)
parquet        a ``.parquet`` file or a folder of them (``Audio`` column)
webdataset     a ``.tar``, a brace pattern ``shards-{000..009}.tar``, or a folder of ``.tar``
lhotse         a lhotse cuts or recordings manifest (``.jsonl[.gz]``, told apart by content)
=============  ==============================================================================

Example:
    >>> # [it.id for it in list_items("data/audio")]   # ['spk1/utt1', ...]
"""

from __future__ import annotations

import json
from pathlib import Path

from slamlm.audio import AUDIO_EXTENSIONS
from slamlm.corpora.files import LIST_SUFFIXES, list_files, list_manifest, list_pathlist
from slamlm.corpora.item import AudioItem, CorpusError
from slamlm.io import open_text

FORMATS = ("auto", "files", "manifest", "list", "hf", "parquet", "webdataset", "lhotse")


def _jsonl_kind(p: Path) -> str:
    """``lhotse`` when the first record is a lhotse cut/recording, else ``manifest``."""
    try:
        with open_text(p) as f:
            for line in f:
                if line.strip():
                    r = json.loads(line)
                    break
            else:
                return "manifest"
    except (OSError, ValueError, EOFError):
        return "manifest"  # the manifest reader reports it with the line
    if isinstance(r, dict) and (("sources" in r and "sampling_rate" in r)
                                or str(r.get("type", "")).endswith("Cut")
                                or ("recording" in r and "start" in r)):
        return "lhotse"
    return "manifest"


def detect_format(spec: str | Path) -> str:
    """The container a spec names (see the table above)."""
    from slamlm.corpora.tables import is_hf_dir

    s, p = str(spec), Path(str(spec))
    if "{" in s or s.endswith((".tar", ".tar.gz", ".tgz")):
        return "webdataset"
    if p.is_file():
        if s.endswith(".parquet"):
            return "parquet"
        if s.endswith((".jsonl", ".jsonl.gz")):
            return _jsonl_kind(p)
        if p.suffix in LIST_SUFFIXES:
            return "list"
        return "files"
    if p.is_dir():
        if is_hf_dir(p):
            return "hf"
        kinds = set()
        for q in p.rglob("*"):
            if q.name.endswith(".parquet"):
                kinds.add("parquet")
            elif q.name.endswith(".tar"):
                kinds.add("webdataset")
            elif q.suffix.lower() in AUDIO_EXTENSIONS:
                kinds.add("files")
            if len(kinds) > 1:
                raise CorpusError(f"{spec}: holds both {' and '.join(sorted(kinds))} files; say "
                                  f"which with --input-format")
        return kinds.pop() if kinds else "files"
    return "files"  # a glob, or a missing path (the files reader names it)


def list_items(spec: str | Path, input_format: str = "auto", split: str | None = None,
               audio_column: str | None = None, text_column: str | None = None,
               id_column: str | None = None, need_audio: bool = True) -> list[AudioItem]:
    """Every item of ``spec``; ids checked unique (a clash names both sources).
    ``need_audio=False`` accepts a table without an audio column (text only)."""
    from slamlm.corpora.lhotse_manifests import list_lhotse
    from slamlm.corpora.tables import list_hf, list_parquet
    from slamlm.corpora.tars import list_tars

    fmt = detect_format(spec) if input_format in ("auto", "", None) else input_format
    if fmt not in FORMATS:
        raise CorpusError(f"--input-format {input_format!r}: choose one of {', '.join(FORMATS)}")
    p = Path(str(spec))
    readers = {
        "files": lambda: list_files(spec),
        "manifest": lambda: list_manifest(p),
        "list": lambda: list_pathlist(p),
        "hf": lambda: list_hf(p, split, audio_column, text_column, id_column, need_audio),
        "parquet": lambda: list_parquet(p, audio_column, text_column, id_column, need_audio),
        "webdataset": lambda: list_tars(spec),
        "lhotse": lambda: list_lhotse(p),
    }
    items = readers[fmt]()
    seen: dict[str, str] = {}
    for it in items:
        if it.id in seen:
            raise CorpusError(f"{spec}: id {it.id!r} is used by both {seen[it.id]} and "
                              f"{it.source} (give each utterance a unique id"
                              f"{'; --id-column row numbers the rows' if fmt in ('hf', 'parquet') else ''})")
        seen[it.id] = it.source
    if not items:
        raise CorpusError(f"{spec}: no audio files found" if fmt == "files" else
                          f"{spec}: no audio found ({fmt})")
    return items


def list_texts(spec: str | Path, input_format: str = "auto", split: str | None = None,
               text_column: str | None = None) -> list[tuple[str, str]]:
    """(id, text) of every item of a container that has text (no audio is read).

    A container with no text at all is an error naming it; items without text are left out.
    """
    items = list_items(spec, input_format, split=split, text_column=text_column,
                       need_audio=False)
    out = [(it.id, it.text) for it in items if it.text]
    if not out:
        raise CorpusError(f"{spec}: none of its {len(items)} items has text (no text column, "
                          f"transcript file or text member); give --text-column or another file")
    return out
