"""Hugging Face ``datasets`` saved to disk and parquet files with an ``Audio`` column.

Listing reads only the id/text columns (and ``audio.path`` when it is the id), never the audio:
each row becomes an :class:`AudioItem` with a ``ref`` to it, decoded later in a worker.

Columns, when not given: audio = the one ``Audio``-typed column (else the one struct column
holding ``bytes`` or ``array``+``sampling_rate``); id = ``id``, ``file``, then ``audio.path``
(extension dropped), else ``<file-stem>/<row>``; text = the first of :data:`TEXT_COLUMNS`.

Example:
    >>> # list_parquet("sTinyStories/data")[0]   # AudioItem(id='data-00000-of-02191/0', ...)
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Any

from slamlm.corpora.item import AudioItem, CorpusError, need

TEXT_COLUMNS = ("text", "transcript", "transcription", "sentence", "normalized_text",
                "aligned_text")
ID_COLUMNS = ("id", "file")


def is_hf_dir(p: Path) -> bool:
    """A ``Dataset.save_to_disk`` / ``DatasetDict.save_to_disk`` folder."""
    return p.is_dir() and ((p / "state.json").is_file() or (p / "dataset_dict.json").is_file())


def hf_splits(folder: str | Path) -> list[str] | None:
    """Split names of a saved DatasetDict; None for a single Dataset."""
    f = Path(folder) / "dataset_dict.json"
    if not f.is_file():
        return None
    try:
        return list(json.loads(f.read_text())["splits"])
    except (ValueError, KeyError, TypeError) as e:
        raise CorpusError(f"{f}: not a DatasetDict index ({e}); re-save it with "
                          f"DatasetDict.save_to_disk") from e


def split_folder(folder: str | Path, split: str | None) -> Path:
    """The folder of one split (a DatasetDict needs ``split`` unless it has one)."""
    folder = Path(folder)
    splits = hf_splits(folder)
    if splits is None:
        if split:
            raise CorpusError(f"{folder}: a single Dataset, not a DatasetDict: it has no split "
                              f"{split!r} (leave --split out)")
        return folder
    if split is None:
        if len(splits) != 1:
            raise CorpusError(f"{folder}: a DatasetDict with splits {splits}: choose one with "
                              f"--split (e.g. --split {splits[0]})")
        split = splits[0]
    if split not in splits:
        raise CorpusError(f"{folder}: no split {split!r}; it has {splits}")
    return folder / split


@lru_cache(maxsize=8)
def open_hf(folder: str, split: str | None) -> Any:
    """The memory-mapped ``datasets.Dataset`` of a saved folder (one split)."""
    datasets = need("datasets", "reading a Hugging Face dataset")
    path = split_folder(folder, split)
    try:
        return datasets.load_from_disk(str(path))
    except Exception as e:  # noqa: BLE001 - the library's own errors, made clear
        raise CorpusError(f"{path}: cannot load with datasets.load_from_disk ({type(e).__name__}: "
                          f"{str(e)[:200]})") from e


def describe(schema: Any) -> str:
    return ", ".join(f"{f.name} ({f.type})" for f in schema)


def _given_column(names: list[str], schema: Any, where: str, given: str, flag: str) -> str:
    """``given`` if the table has it, else an error listing the columns it has."""
    if given not in names:
        raise CorpusError(f"{where}: no column {given!r} ({flag}); its columns are "
                          f"{describe(schema)}")
    return given


def audio_column(features: Any, schema: Any, where: str, given: str | None,
                 need_audio: bool = True) -> str | None:
    """The audio column: ``given``, else the single Audio-typed (or audio-like) one
    (None when there is none and ``need_audio`` is False: a text-only table)."""
    datasets = need("datasets", "reading a Hugging Face dataset")
    names = [f.name for f in schema]
    if given:
        return _given_column(names, schema, where, given, "--audio-column")
    typed = [n for n in names if isinstance(features.get(n), datasets.Audio)]
    if not typed:  # no HF metadata: struct columns that hold encoded bytes or decoded arrays
        pa = need("pyarrow", "reading parquet")
        typed = [f.name for f in schema if pa.types.is_struct(f.type)
                 and ({"bytes"} <= {c.name for c in f.type}
                      or {"array", "sampling_rate"} <= {c.name for c in f.type})]
    if len(typed) == 1:
        return typed[0]
    if not typed and not need_audio:
        return None
    if not typed:
        raise CorpusError(f"{where}: no audio column (no Audio-typed or {{bytes, path}} / "
                          f"{{array, sampling_rate}} column); its columns are {describe(schema)}. "
                          f"Name one with --audio-column")
    raise CorpusError(f"{where}: several audio columns {typed}: choose one with --audio-column")


def text_column(schema: Any, where: str, given: str | None) -> str | None:
    names = [f.name for f in schema]
    if given:
        return _given_column(names, schema, where, given, "--text-column")
    return next((n for n in TEXT_COLUMNS if n in names), None)


def id_column(schema: Any, audio: str, given: str | None) -> str | None:
    """``id``/``file``, then ``<audio>.path``; ``"row"`` (or nothing found): None."""
    names = [f.name for f in schema]
    if given == "row":
        return None
    if given:
        if given not in names and given != f"{audio}.path":
            raise CorpusError(f"id column {given!r} (--id-column) is not one of {names}")
        return given
    for n in ID_COLUMNS:
        if n in names:
            return n
    pa = need("pyarrow", "reading parquet")
    if audio is None:
        return None
    t = schema.field(audio).type
    if pa.types.is_struct(t) and "path" in {c.name for c in t}:
        return f"{audio}.path"
    return None


def as_text(value: Any) -> str | None:
    """A transcript cell as one line: strings, or word lists such as sTinyStories'
    ``aligned_text`` (``[{"word", "start_time", "end_time"}]``)."""
    if isinstance(value, str):
        return " ".join(value.split()) or None
    if isinstance(value, list):
        words = [w.get("word") if isinstance(w, dict) else (w[0] if isinstance(w, (list, tuple))
                 and w else w) for w in value]
        words = [str(w) for w in words if w is not None and str(w).strip()]
        return " ".join(words) or None
    return None


def _ids(values: list[Any], stem: str, by_path: bool) -> list[str]:
    out = []
    for r, v in enumerate(values):
        if v is None or not str(v).strip():
            out.append(f"{stem}/{r}")
        elif by_path:
            out.append(PurePosixPath(str(v)).with_suffix("").as_posix())
        else:
            out.append(str(v))
    return out


def _rows(table: Any, stem: str, id_col: str | None, text_col: str | None, audio: str
          ) -> tuple[list[str], list[str | None]]:
    n = table.num_rows
    if id_col is None:
        ids = [f"{stem}/{r}" for r in range(n)]
    elif id_col == f"{audio}.path" and id_col not in table.column_names:
        col = table.column(audio).combine_chunks()
        ids = _ids(col.field("path").to_pylist(), stem, True)
    else:
        ids = _ids(table.column(id_col).to_pylist(), stem, id_col != "id")
    texts = ([as_text(v) for v in table.column(text_col).to_pylist()] if text_col
             else [None] * n)
    return ids, texts


def _ref(ref: tuple[Any, ...], col: str | None) -> tuple[Any, ...]:
    return ref if col is not None else ("missing", "the table has no audio column")


def list_hf(folder: str | Path, split: str | None = None, audio: str | None = None,
            text: str | None = None, id_col: str | None = None, need_audio: bool = True
            ) -> list[AudioItem]:
    """Items of a saved Dataset / DatasetDict split (memory-mapped; no audio read)."""
    folder = Path(folder)
    splits = hf_splits(folder)
    if splits is not None and split is None and len(splits) == 1:
        split = splits[0]
    ds = open_hf(str(folder), split)
    where = str(split_folder(folder, split))
    schema = ds.data.schema
    col = audio_column(ds.features, schema, where, audio, need_audio)
    tcol, icol = text_column(schema, where, text), id_column(schema, col, id_col)
    stem = folder.name if split is None else f"{folder.name}/{split}"
    ids, texts = _rows(ds.data.table if hasattr(ds.data, "table") else ds.data, stem, icol,
                       tcol, col)
    return [AudioItem(i, f"{where} row {r}", ref=_ref(("hf", str(folder), split, r, col), col),
                      text=t)
            for r, (i, t) in enumerate(zip(ids, texts))]


def parquet_files(spec: str | Path) -> list[Path]:
    p = Path(spec)
    files = [p] if p.is_file() else sorted(p.rglob("*.parquet"))
    if not files:
        raise CorpusError(f"{spec}: no .parquet files")
    return files


def list_parquet(spec: str | Path, audio: str | None = None, text: str | None = None,
                 id_col: str | None = None, need_audio: bool = True) -> list[AudioItem]:
    """Items of a parquet file or folder of them (only the id/text columns are read)."""
    pq = need("pyarrow.parquet", "reading parquet")
    datasets = need("datasets", "reading parquet with Audio columns")
    root = Path(spec) if Path(spec).is_dir() else Path(spec).parent
    items: list[AudioItem] = []
    for f in parquet_files(spec):
        try:
            pf = pq.ParquetFile(f)
            schema = pf.schema_arrow
            features = datasets.Features.from_arrow_schema(schema)
        except Exception as e:  # noqa: BLE001 - pyarrow's errors, made clear
            raise CorpusError(f"{f}: not a readable parquet file ({type(e).__name__}: "
                              f"{str(e)[:200]})") from e
        col = audio_column(features, schema, str(f), audio, need_audio)
        tcol, icol = text_column(schema, str(f), text), id_column(schema, col, id_col)
        cols = [c for c in (icol, tcol) if c]
        table = pf.read(columns=cols) if cols else None
        stem = f.relative_to(root).with_suffix("").as_posix()
        if table is None:
            ids, texts = [f"{stem}/{r}" for r in range(pf.metadata.num_rows)], None
        else:
            ids, texts = _rows(table, stem, icol, tcol, col)
        for r, rid in enumerate(ids):
            items.append(AudioItem(rid, f"{f} row {r}", ref=_ref(("parquet", str(f), r, col), col),
                                   text=texts[r] if texts else None))
    return items
