"""Record tables on disk: JSONL (``.jsonl[.gz]``), parquet (``.parquet``) or a Hugging Face
dataset folder (``Dataset.save_to_disk``, named ``*.hf``); the same columns in every form.

``slam units extract --format parquet|hf`` writes its units this way, and every reader of
units (``read_units``, ``slam pack``, ``interleave``) reads all three through
:func:`read_records`.

Example:
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = write_records(d / "u.parquet", [{"id": "a", "units": [1, 2]}])  # doctest: +SKIP
    >>> list(read_records(d / "u.parquet"))                                  # doctest: +SKIP
    [{'id': 'a', 'units': [1, 2]}]
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from slamlm.corpora.item import CorpusError, need
from slamlm.io import FailureLog, atomic_dir, fsync_dir, read_jsonl, read_user_jsonl

TABLE_SUFFIXES = (".jsonl", ".jsonl.gz", ".parquet", ".hf")


def is_records_path(p: Path) -> bool:
    """A records file or ``*.hf`` dataset folder, by name."""
    return p.name.endswith(TABLE_SUFFIXES) and (p.is_file() or (p.is_dir() and p.suffix == ".hf"))


def _clean(r: dict[str, Any]) -> dict[str, Any]:
    """A row as JSONL would hold it: optional columns that are null are left out."""
    return {k: v for k, v in r.items() if v is not None}


def read_records(path: str | Path, cut_tail: str = "skip", failures: FailureLog | None = None,
                 fix: str = "re-run the stage that wrote it") -> Iterator[dict[str, Any]]:
    """Rows of a JSONL / parquet / ``.hf`` table as dicts (parquet read a row group at a time).

    ``cut_tail`` as in :func:`slamlm.io.read_jsonl`, or ``"report"`` for a file the user gave:
    a cut last JSONL line goes to ``failures`` (a :class:`slamlm.io.FailureLog`), or raises
    :class:`slamlm.io.CutLineError` naming the line and ``fix`` when ``failures`` is None.
    """
    path = Path(path)
    if path.name.endswith(".parquet"):
        pq = need("pyarrow.parquet", "reading a parquet units file")
        try:
            pf = pq.ParquetFile(path)
        except Exception as e:  # noqa: BLE001
            raise CorpusError(f"{path}: not a readable parquet file ({type(e).__name__}: "
                              f"{str(e)[:200]}); re-run the stage that wrote it") from e
        for g in range(pf.num_row_groups):
            for r in pf.read_row_group(g).to_pylist():
                yield _clean(r)
        return
    if path.is_dir():
        datasets = need("datasets", "reading a Hugging Face units dataset")
        try:
            ds = datasets.load_from_disk(str(path))
        except Exception as e:  # noqa: BLE001
            raise CorpusError(f"{path}: not a saved Hugging Face dataset ({type(e).__name__}: "
                              f"{str(e)[:200]})") from e
        table = ds.data.table if hasattr(ds.data, "table") else ds.data
        for batch in table.to_batches(max_chunksize=1024):
            for r in batch.to_pylist():
                yield _clean(r)
        return
    if cut_tail == "report":
        yield from read_user_jsonl(path, failures, fix)
        return
    yield from read_jsonl(path, cut_tail=cut_tail)


def _chunks(records: Iterable[dict[str, Any]], n: int = 1024) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    for r in records:
        chunk.append(r)
        if len(chunk) == n:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def write_records(path: str | Path, records: Iterable[dict[str, Any]],
                  schema: Any = None) -> Path:
    """Write a parquet file or ``.hf`` dataset folder atomically (temp name, then rename).

    Streams 1024 rows at a time; ``schema`` (a ``pyarrow.Schema``) fixes the columns, else the
    first rows set them (a later column missing in a row is null).
    """
    pa = need("pyarrow", "writing parquet")
    pq = need("pyarrow.parquet", "writing parquet")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        out = tmp / "table.parquet"
        writer = None
        for chunk in _chunks(records):
            if schema is None:
                cols: list[str] = []
                for r in chunk:
                    cols += [k for k in r if k not in cols]
                schema = pa.Table.from_pylist(chunk).select(cols).schema
            table = pa.Table.from_pylist([{k: r.get(k) for k in schema.names} for r in chunk],
                                         schema=schema)
            if writer is None:
                writer = pq.ParquetWriter(out, schema)
            writer.write_table(table, row_group_size=1024)
        if writer is None:
            if schema is None:
                raise CorpusError(f"{path}: no records to write")
            writer = pq.ParquetWriter(out, schema)
        writer.close()
        if path.suffix == ".hf":
            datasets = need("datasets", "writing a Hugging Face units dataset")
            with atomic_dir(path) as final:
                datasets.Dataset(pq.read_table(out, memory_map=True)).save_to_disk(str(final))
        else:
            os.replace(out, path)
            fsync_dir(path.parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path
