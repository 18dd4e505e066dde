"""Audio -> deduplicated units, cached on disk so a second eval of the same files encodes nothing.

The cache is one JSONL file per extractor (``units-<hash>.jsonl`` where the hash covers the
extractor identity minus its local k-means path), one record per file keyed by the sha1 of its
bytes: an edited or replaced file is re-encoded, while a file rewritten with the same content
(a re-run synthesis, a copy, a new mtime) is not. Records are appended as they are made, so an
interrupted eval keeps what it encoded.

Example:
    >>> cache = UnitCache("run/eval/cache", extractor.identity())        # doctest: +SKIP
    >>> units = encode_cached(extractor, ["a.wav", "b.wav"], cache)      # doctest: +SKIP
    >>> cache.hits, cache.misses                                         # doctest: +SKIP
    (0, 2)
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from slamlm.io import FailureLog, JsonlAppender, file_sha1, read_jsonl
from slamlm.units.identity import unit_cache_name

log = logging.getLogger(__name__)


def dedup_units(units: Any) -> np.ndarray:
    """Remove consecutive duplicates: ``[5, 5, 3, 3, 5] -> [5, 3, 5]``.

    Example:
        >>> dedup_units([5, 5, 3, 3, 5]).tolist()
        [5, 3, 5]
    """
    from slamlm.units.extractor import dedup

    return dedup(units)[0]


class UnitCache:
    """Deduplicated units of audio files for one extractor, persisted as JSONL.

    ``seeds``: folders that may hold a read-only file of the same name and format, e.g. the
    one ``slam synth benchmarks --match-units`` writes beside the files whose units it
    counted; their rows are looked up too (keyed by content, so a file edited since encodes
    again) and never written to.
    """

    def __init__(self, folder: str | Path, identity: dict[str, Any],
                 seeds: Sequence[str | Path] = ()):
        name = unit_cache_name(identity)
        self.path = Path(folder) / name
        self._units: dict[str, list[int]] = {}
        self.hits = self.misses = 0
        self.seeded = 0
        self.seed_files = [p for p in dict.fromkeys(Path(d) / name for d in seeds)
                           if p != self.path and p.is_file()]
        for path in self.seed_files + [self.path]:
            if not path.exists():
                continue
            for r in read_jsonl(path, skip_bad=True):
                if (isinstance(r, dict) and isinstance(r.get("sha1"), str)
                        and isinstance(r.get("units"), list)
                        and all(isinstance(u, int) and u >= 0 for u in r["units"])):
                    self.seeded += path != self.path and r["sha1"] not in self._units
                    self._units[r["sha1"]] = r["units"]  # (older path/mtime rows: re-encoded)
        self._app: JsonlAppender | None = None

    def get(self, path: str | Path) -> np.ndarray | None:
        units = self._units.get(file_sha1(path))
        if units is None:
            return None
        return np.asarray(units, dtype=np.int64)

    def put(self, path: str | Path, units: np.ndarray) -> None:
        key = file_sha1(path)
        self._units[key] = [int(u) for u in units]
        if self._app is None:
            self._app = JsonlAppender(self.path, fsync_every=256)
        self._app.write({"sha1": key, "path": str(Path(path).resolve()),
                         "units": self._units[key]})

    def close(self) -> None:
        if self._app is not None:
            self._app.close()
            self._app = None


def _encode_chunk(extractor, paths: list[str], failures: FailureLog | None) -> list[np.ndarray | None]:
    """Encode a chunk; on an error retry file by file so one bad file only loses itself."""
    try:
        return list(extractor.encode_paths(paths))
    except Exception as e:  # noqa: BLE001 - find the culprit below
        if len(paths) == 1:
            if failures is None:
                raise
            failures.add(paths[0], paths[0], f"cannot encode: {e}")
            return [None]
    return [u for p in paths for u in _encode_chunk(extractor, [p], failures)]


def encode_cached(
    extractor, paths: Sequence[str], cache: UnitCache, batch_size: int = 32,
    failures: FailureLog | None = None, progress: bool = False,
) -> dict[str, np.ndarray | None]:
    """Deduplicated units for each distinct path (None where encoding failed), via the cache."""
    out: dict[str, np.ndarray | None] = {}
    todo = []
    for p in dict.fromkeys(paths):
        units = cache.get(p)
        if units is None:
            todo.append(p)
        else:
            out[p] = units
    cache.hits += len(out)
    cache.misses += len(todo)
    chunks = range(0, len(todo), batch_size)
    if progress and todo:
        from tqdm import tqdm

        chunks = tqdm(chunks, desc="encoding", unit="batch")
    try:
        for s in chunks:
            chunk = todo[s:s + batch_size]
            for p, units in zip(chunk, _encode_chunk(extractor, chunk, failures)):
                if units is not None:
                    units = dedup_units(units)
                    cache.put(p, units)
                out[p] = units
    finally:
        cache.close()
    log.info("units: %d from cache, %d encoded", len(paths) - len(todo), len(todo))
    return out
