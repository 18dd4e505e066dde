"""lhotse manifests: a recordings manifest (``*recordings*.jsonl.gz``) or a cuts manifest
(``*cuts*.jsonl.gz``), read lazily with lhotse itself.

A cut becomes its recording's file with the cut's ``start`` / ``duration`` as the span to
decode, and the text of its supervisions (in time order); a recording becomes its file, with
text from a ``*supervisions*`` manifest of the same name when there is one. Relative source
paths are taken from the working folder (lhotse's rule), else from the manifest's folder.
Cuts or recordings that cannot be read as one file span (mixed/padding cuts, url or command
sources, per-channel files, transforms other than resampling) become items that fail with the
reason, so they land in ``failures.jsonl``.

Example:
    >>> # list_lhotse("data/librispeech_cuts_dev-clean.jsonl.gz")[0].offset  # cut start (s)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from slamlm.corpora.item import AudioItem, CorpusError, need


def is_lhotse(p: Path) -> bool:
    """A lhotse manifest file name (``..cuts..`` / ``..recordings..`` ``.jsonl[.gz]``)."""
    return p.name.endswith((".jsonl", ".jsonl.gz")) and ("cuts" in p.name or "recordings" in p.name)


def _failed(rid: str, where: str, reason: str, text: str | None = None) -> AudioItem:
    return AudioItem(rid, where, ref=("missing", reason), text=text)


def _source(rec: Any, manifest: Path, where: str) -> AudioItem | str:
    """A template item for a recording's audio, or the reason it cannot be read."""
    if len(rec.sources) != 1:
        return f"recording {rec.id} has {len(rec.sources)} sources (one file per channel); " \
               f"give one file holding all channels"
    names = [t.get("name") if isinstance(t, dict) else type(t).__name__
             for t in (rec.transforms or [])]
    bad = [n for n in names if n != "Resample"]
    if bad:
        return f"recording {rec.id} has transforms {bad}; only resampling is supported"
    src = rec.sources[0]
    if src.type == "file":
        p = Path(src.source)
        if not p.is_absolute() and not p.exists() and (manifest.parent / p).exists():
            p = manifest.parent / p
        return AudioItem(rec.id, str(p), path=str(p))
    if src.type == "memory":
        return AudioItem(rec.id, f"{where} (in-memory audio)", data=bytes(src.source))
    return f"recording {rec.id}: source type {src.type!r} is not read here (only files and " \
           f"in-memory audio)"


def _supervision_texts(manifest: Path) -> dict[str, str]:
    sibling = manifest.with_name(manifest.name.replace("recordings", "supervisions"))
    if sibling == manifest or not sibling.is_file():
        return {}
    lhotse = need("lhotse", "reading lhotse manifests")
    by_rec: dict[str, list[tuple[float, str]]] = {}
    for s in lhotse.load_manifest_lazy(sibling):
        if s.text:
            by_rec.setdefault(s.recording_id, []).append((s.start, s.text))
    return {k: " ".join(" ".join(t.split()) for _, t in sorted(v)) for k, v in by_rec.items()}


def list_lhotse(manifest: str | Path) -> list[AudioItem]:
    """Items of a lhotse recordings or cuts manifest."""
    lhotse = need("lhotse", "reading lhotse manifests")
    manifest = Path(manifest)
    try:
        ms = lhotse.load_manifest_lazy(manifest)
    except Exception as e:  # noqa: BLE001 - lhotse's errors, made clear
        raise CorpusError(f"{manifest}: not a lhotse manifest ({type(e).__name__}: "
                          f"{str(e)[:200]})") from e
    if ms is None:
        raise CorpusError(f"{manifest}: not a lhotse cuts/recordings manifest")
    is_cuts = isinstance(ms, lhotse.CutSet)
    if not is_cuts and not isinstance(ms, lhotse.RecordingSet):
        raise CorpusError(f"{manifest}: a lhotse {type(ms).__name__}; give a cuts or recordings "
                          f"manifest")
    texts = {} if is_cuts else _supervision_texts(manifest)
    items: list[AudioItem] = []
    try:
        for n, m in enumerate(ms, 1):
            where = f"{manifest} line {n} ({'cut' if is_cuts else 'recording'} {m.id})"
            items.append(_cut(m, manifest, where) if is_cuts else
                         _recording(m, manifest, where, texts.get(m.id)))
    except CorpusError:
        raise
    except Exception as e:  # noqa: BLE001
        raise CorpusError(f"{manifest} line {len(items) + 1}: not a valid lhotse record "
                          f"({type(e).__name__}: {str(e)[:200]})") from e
    return items


def _recording(rec: Any, manifest: Path, where: str, text: str | None) -> AudioItem:
    src = _source(rec, manifest, where)
    if isinstance(src, str):
        return _failed(rec.id, where, src, text)
    return AudioItem(rec.id, src.source, path=src.path, data=src.data, text=text)


def _cut(cut: Any, manifest: Path, where: str) -> AudioItem:
    sups = sorted(getattr(cut, "supervisions", None) or [], key=lambda s: s.start)
    text = " ".join(" ".join(s.text.split()) for s in sups if s.text) or None
    rec = getattr(cut, "recording", None)
    if rec is None:
        return _failed(cut.id, where, f"a {type(cut).__name__} (no single recording); only "
                                      f"plain (mono) cuts are read")
    src = _source(rec, manifest, where)
    if isinstance(src, str):
        return _failed(cut.id, where, src, text)
    if src.data is not None:
        return _failed(cut.id, where, "a cut of in-memory audio; give file sources", text)
    span = f"{src.path} [{cut.start:.3f}+{cut.duration:.3f} s]"
    return AudioItem(cut.id, span, path=src.path, offset=float(cut.start),
                     duration=float(cut.duration), text=text)
