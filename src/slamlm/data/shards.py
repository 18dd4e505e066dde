"""Token shards: a flat uint16/uint32 memmap per split plus ``index.json`` describing it.

Layout of a ``tokens/`` folder written by ``slam pack``::

    tokens/index.json          {"format": 1, "dtype": "uint16", "vocab": {...},
                                "units_hash": "...", "context": 1024,
                                "splits": {"train": {"file": "train.bin", "n_tokens": N,
                                                     "n_docs": D, "docs": "train_docs.npy"}}}
    tokens/train.bin           flat token stream (index "dtype": uint16, or uint32 when the
                               vocabulary has more than 65 536 tokens; no "dtype" = uint16)
    tokens/train_docs.npy      (D, 2) int64: offset and length of each document

A shard whose size disagrees with its index is refused (never silently trained on).

Example:
    >>> # shard = TokenShard.open("run/tokens", "train")
    >>> # shard.tokens[:10], shard.doc_offsets[:3]
"""

from __future__ import annotations

import json
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from slamlm.io import reading
from slamlm.vocab import UnitVocab

FORMAT_VERSION = 1
DTYPE = np.uint16  # default / legacy shard dtype (indexes written without "dtype")
DTYPES = ("uint16", "uint32")


def shard_dtype(vocab_size: int) -> np.dtype:
    """Smallest shard dtype holding token ids ``0 .. vocab_size - 1``.

    Example:
        >>> shard_dtype(503).name, shard_dtype(151_667).name
        ('uint16', 'uint32')
    """
    for name in DTYPES:
        if vocab_size - 1 <= np.iinfo(name).max:
            return np.dtype(name)
    raise ValueError(f"vocabulary of {vocab_size} tokens does not fit uint32 token shards "
                     f"(max {np.iinfo(np.uint32).max + 1} tokens)")


def index_dtype(index: dict[str, Any], where: str | Path = "index.json") -> np.dtype:
    """The token dtype an index declares (``uint16`` when absent: shards from before uint32)."""
    name = index.get("dtype", "uint16")
    if name not in DTYPES:
        raise ShardError(f"{where}: unsupported token dtype {name!r} (expected one of "
                         f"{list(DTYPES)}): re-run slam pack")
    return np.dtype(name)


class ShardError(ValueError):
    """A token shard is missing, truncated or inconsistent with its index."""


def read_index(folder: str | Path) -> dict[str, Any]:
    """Load ``folder/index.json`` with a clear error when it is missing or unreadable."""
    path = Path(folder) / "index.json"
    if not path.is_file():
        raise ShardError(f"{path} does not exist: run `slam pack UNITS_DIR --out {folder}` first")
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ShardError(f"{path}: unreadable index ({e}): re-run slam pack") from e
    if not isinstance(index, dict):
        raise ShardError(f"{path}: expected a JSON object, got {type(index).__name__}: "
                         f"re-run slam pack")
    if index.get("format") != FORMAT_VERSION:
        raise ShardError(f"{path}: format {index.get('format')!r} != {FORMAT_VERSION}: re-run slam pack")
    return index


@dataclass
class TokenShard:
    """One split of a packed token folder: memmapped tokens + document offsets/lengths."""

    folder: Path
    split: str
    tokens: np.ndarray  # (N,) uint16 or uint32 memmap (index "dtype")
    doc_offsets: np.ndarray  # (D,) int64, ascending
    doc_lengths: np.ndarray  # (D,) int64
    vocab: UnitVocab
    index: dict[str, Any]

    @classmethod
    def open(cls, folder: str | Path, split: str = "train") -> TokenShard:
        """Open and validate ``folder/<split>.bin`` against ``index.json``."""
        folder = Path(folder)
        with reading(folder / "index.json", "re-run slam pack", ShardError):
            return cls._open(folder, split)

    @classmethod
    def _open(cls, folder: Path, split: str) -> TokenShard:
        index = read_index(folder)
        if not isinstance(index.get("splits"), dict):
            raise ShardError(f"{folder}/index.json: no 'splits' mapping: re-run slam pack")
        if split not in index["splits"]:
            raise ShardError(f"{folder}/index.json has no split {split!r} (has {sorted(index['splits'])})")
        meta = index["splits"][split]
        need = {"file": str, "docs": str, "n_tokens": int, "n_docs": int}
        bad = [k for k, t in need.items() if not isinstance(meta, dict)
               or not isinstance(meta.get(k), t) or isinstance(meta.get(k), bool)]
        if bad or not isinstance(index.get("vocab"), dict):
            raise ShardError(f"{folder}/index.json: split {split!r} lacks a valid "
                             f"{(bad or ['vocab'])[0]!r}: re-run slam pack")
        bin_path = folder / meta["file"]
        if not bin_path.is_file():
            raise ShardError(f"{bin_path} (named by {folder}/index.json) is missing or not a "
                             f"file: re-run slam pack")
        dtype = index_dtype(index, folder / "index.json")
        itemsize = dtype.itemsize
        n_file = bin_path.stat().st_size // itemsize
        if n_file != meta["n_tokens"] or bin_path.stat().st_size % itemsize:
            raise ShardError(
                f"{folder.name}/{meta['file']} has {n_file} tokens but index.json says "
                f"{meta['n_tokens']}: re-run slam pack"
            )
        docs_path = folder / meta["docs"]
        if not docs_path.is_file():
            raise ShardError(f"{docs_path} (named by {folder}/index.json) is missing or not a "
                             f"file: re-run slam pack")
        with reading(docs_path, "re-run slam pack", ShardError):
            docs = np.load(docs_path, allow_pickle=False)
        if (docs.shape != (meta["n_docs"], 2) or not np.issubdtype(docs.dtype, np.integer)
                or (len(docs) and (docs.min() < 0 or (docs[:, 0] + docs[:, 1]).max() > n_file
                                   or docs[-1].sum() != n_file))):
            raise ShardError(f"{folder / meta['docs']} disagrees with index.json: re-run slam pack")
        tokens = (np.memmap(bin_path, dtype=dtype, mode="r") if n_file
                  else np.zeros(0, dtype=dtype))
        vocab = UnitVocab.from_dict(index["vocab"])
        return cls(folder, split, tokens, docs[:, 0].astype(np.int64), docs[:, 1].astype(np.int64),
                   vocab, index)

    @property
    def n_tokens(self) -> int:
        return int(self.tokens.shape[0])

    @property
    def n_docs(self) -> int:
        return int(self.doc_offsets.shape[0])

    def doc(self, i: int) -> np.ndarray:
        """Tokens of document ``i`` (int64 copy)."""
        o, n = int(self.doc_offsets[i]), int(self.doc_lengths[i])
        return np.asarray(self.tokens[o:o + n], dtype=np.int64)


class ShardWriter:
    """Append documents to ``<split>.bin`` in a folder; :meth:`finish` returns its index entry.

    ``dtype``: the shard token dtype (:func:`shard_dtype` of the vocabulary size).
    """

    def __init__(self, folder: Path, split: str, dtype: np.dtype | str = DTYPE):
        self.folder, self.split = Path(folder), split
        self.dtype = np.dtype(dtype)
        self.path = self.folder / f"{split}.bin"
        self._f = open(self.path, "wb")
        self.n_tokens = 0
        self._docs = array("q")  # flat (offset, length) pairs: 16 bytes a document

    def add(self, tokens: np.ndarray) -> None:
        """Write one document (already ``[bos] ... [eos]`` or a piece of one)."""
        lo, hi = (int(tokens.min()), int(tokens.max())) if tokens.size else (0, 0)
        if lo < 0 or hi > np.iinfo(self.dtype).max:
            raise ShardError(f"token id {lo if lo < 0 else hi} does not fit {self.dtype.name} "
                             f"shards ({self.path.name})")
        self._f.write(np.asarray(tokens, dtype=self.dtype).tobytes())
        self._docs.extend((self.n_tokens, int(tokens.size)))
        self.n_tokens += int(tokens.size)

    @property
    def n_docs(self) -> int:
        """Documents written so far."""
        return len(self._docs) // 2

    @property
    def docs(self) -> np.ndarray:
        """(D, 2) int64 view of (offset, length) per document written so far."""
        return np.frombuffer(self._docs, dtype=np.int64).reshape(-1, 2).copy() if self._docs else \
            np.zeros((0, 2), dtype=np.int64)

    def finish(self) -> dict[str, Any]:
        self._f.close()
        docs = self.docs
        np.save(self.folder / f"{self.split}_docs.npy", docs)
        return {"file": self.path.name, "n_tokens": self.n_tokens, "n_docs": len(docs),
                "docs": f"{self.split}_docs.npy"}

    def drop_doc(self, i: int) -> np.ndarray:
        """Remove document ``i`` (rewrites the file; used only for tiny datasets). Returns it."""
        self._f.close()
        data = np.fromfile(self.path, dtype=self.dtype)
        docs = self.docs.copy()
        o, n = (int(v) for v in docs[i])
        removed = data[o:o + n].astype(np.int64)
        np.concatenate([data[:o], data[o + n:]]).tofile(self.path)
        docs[docs[:, 0] > o, 0] -= n
        self._docs = array("q", np.delete(docs, i, axis=0).reshape(-1).tobytes())
        self.n_tokens -= n
        self._f = open(self.path, "ab")
        return removed
