"""Decode or probe one :class:`AudioItem`, whatever holds it (file, span, bytes, row, member).

Row and member readers open their container once per process and keep it (DataLoader workers
each have their own); parquet row groups are cached a few at a time, so rows read in listing
order cost one read of each group.

Example:
    >>> # load_item(AudioItem("a", "a.flac", path="a.flac"), min_seconds=0.1)  # (T,) float32
"""

from __future__ import annotations

from collections import OrderedDict
from functools import lru_cache
from typing import Any

import numpy as np

from slamlm.audio import (
    AudioError,
    AudioInfo,
    check_wav,
    load_audio,
    probe_audio,
    probe_bytes,
)
from slamlm.corpora.item import AudioItem, need

_GROUPS: OrderedDict[tuple[str, int, str], Any] = OrderedDict()  # parquet row groups (LRU)
_KEEP_GROUPS = 4


def load_item(item: AudioItem, min_seconds: float = 0.0) -> np.ndarray:
    """Mono float32 16 kHz samples of ``item``; :class:`AudioError` naming its source."""
    from slamlm.audio import load_audio_bytes

    if item.path is not None:
        return load_audio(item.path, min_seconds=min_seconds, offset=item.offset,
                          duration=item.duration)
    value = item.data if item.data is not None else _cell(item)
    if isinstance(value, dict) and value.get("array") is not None:
        return check_wav(np.asarray(value["array"]), int(value.get("sampling_rate") or 0),
                         item.source, min_seconds=min_seconds)
    return load_audio_bytes(_bytes(value, item), item.source, min_seconds=min_seconds)


def probe_item(item: AudioItem) -> float:
    """Length in seconds, from the header only (no decoding)."""
    if item.path is not None:
        info = probe_audio(item.path)
        if item.offset > 0 and item.offset >= info.seconds:
            raise AudioError(item.source, f"starts at {item.offset:.3f} s, past the end of "
                                          f"{item.path} ({info.seconds:.3f} s)")
        rest = info.seconds - item.offset
        return rest if item.duration is None else min(item.duration, rest)
    value = item.data if item.data is not None else _cell(item)
    if isinstance(value, dict) and value.get("array") is not None:
        sr = int(value.get("sampling_rate") or 0)
        return len(value["array"]) / sr if sr else 0.0
    info: AudioInfo = probe_bytes(_bytes(value, item), item.source)
    return info.seconds


def _bytes(value: Any, item: AudioItem) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, dict):
        if value.get("bytes"):
            return bytes(value["bytes"])
        if value.get("path"):  # an Audio cell that points at a file instead of holding bytes
            from pathlib import Path

            p = Path(value["path"])
            if not p.is_absolute() and item.ref is not None:
                p = Path(item.ref[1]).parent / p
            if p.is_file():
                return p.read_bytes()
            raise AudioError(item.source, f"audio cell has no bytes and its path {value['path']!r} "
                                          f"does not exist")
    raise AudioError(item.source, "missing audio (the cell is empty)")


def _cell(item: AudioItem) -> Any:
    """The audio value of a container row/member (bytes, or a {bytes, path} / {array} dict)."""
    if item.ref is None:
        raise AudioError(item.source, "item has no audio (no path, bytes or container row)")
    kind = item.ref[0]
    if kind == "missing":
        raise AudioError(item.source, item.ref[1])
    if kind == "tar":
        _, file, start, size = item.ref
        with open(file, "rb") as f:
            f.seek(start)
            data = f.read(size)
        if len(data) != size:
            raise AudioError(item.source, f"tar member cut short ({len(data)} of {size} bytes)")
        return data
    if kind == "parquet":
        _, file, row, column = item.ref
        starts = _row_group_starts(file)
        g = int(np.searchsorted(starts, row, side="right")) - 1
        return _row_group(file, g, column).column(0)[row - int(starts[g])].as_py()
    if kind == "hf":
        _, folder, split, row, column = item.ref
        return _hf_column(folder, split, column)[row].as_py()
    raise AudioError(item.source, f"unknown container kind {kind!r}")


@lru_cache(maxsize=64)
def _row_group_starts(file: str) -> np.ndarray:
    pq = need("pyarrow.parquet", "reading parquet")
    md = pq.ParquetFile(file).metadata
    return np.cumsum([0] + [md.row_group(i).num_rows for i in range(md.num_row_groups)])[:-1]


def _row_group(file: str, g: int, column: str) -> Any:
    key = (file, g, column)
    if key in _GROUPS:
        _GROUPS.move_to_end(key)
        return _GROUPS[key]
    pq = need("pyarrow.parquet", "reading parquet")
    table = pq.ParquetFile(file).read_row_group(g, columns=[column])
    _GROUPS[key] = table
    while len(_GROUPS) > _KEEP_GROUPS:
        _GROUPS.popitem(last=False)
    return table


@lru_cache(maxsize=8)
def _hf_column(folder: str, split: str | None, column: str) -> Any:
    """The (memory-mapped) pyarrow column of a saved dataset: random rows cost no copy."""
    from slamlm.corpora.tables import open_hf

    return open_hf(folder, split).data.column(column)
