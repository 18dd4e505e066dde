"""``slam pack``: units JSONL folder -> ``tokens/{train,val}.bin`` + ``index.json``.

Each record becomes a document ``[bos] + (units + 3) + [eos]``; documents longer than the
context are cut into pieces of at most ``context`` tokens (bos stays on the first piece, eos
on the last). The validation split is chosen by a stable hash of the record id, so it never
depends on file order. The folder is written under a temporary name and renamed at the end;
re-running with the same inputs and settings skips the work.

Example:
    >>> # run_pack(PackConfig(units=Path("run/units"), out=Path("run/tokens")))
    >>> split_long(np.arange(5), 2)
    [array([0, 1]), array([2, 3]), array([4])]
    >>> is_val("spk1/utt3", 0.0)
    False
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from slamlm.config import dump_config
from slamlm.corpora.records import read_records
from slamlm.data.shards import FORMAT_VERSION, ShardError, ShardWriter, read_index, shard_dtype
from slamlm.io import FailureLog, ManifestError, atomic_dir, atomic_write_json
from slamlm.vocab import UnitVocab, VocabError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PackConfig:
    """Settings of ``slam pack``."""

    units: Path = Path("units")  # folder of *.jsonl[.gz] / *.parquet / *.hf units files (or one file)
    out: Path = Path("tokens")
    n_units: int = 500  # k of the k-means that made the units
    context: int = 1024  # documents longer than this are cut into pieces
    val_fraction: float = 0.01
    strict: bool = False


def find_units_files(src: Path) -> list[Path]:
    """Units files under ``src`` (sorted, recursive: ``.jsonl[.gz]``, ``.parquet``, ``*.hf``
    dataset folders), or ``[src]`` for a single file / ``.hf`` folder."""
    src = Path(src)
    if src.is_file() or (src.is_dir() and src.suffix == ".hf"):
        return [src]
    if not src.is_dir():
        raise FileNotFoundError(f"{src}: no such units file or folder (run slam units first)")
    files = sorted(p for p in src.rglob("*")
                   if (p.name.endswith((".jsonl", ".jsonl.gz", ".parquet"))
                       or (p.suffix == ".hf" and p.is_dir()))
                   and not p.name.startswith(("failures", "."))
                   and not any(q.suffix == ".hf" for q in p.relative_to(src).parents))
    if not files:
        raise FileNotFoundError(f"{src}: no *.jsonl, *.jsonl.gz, *.parquet or *.hf units files "
                                f"found")
    return files


def units_hash(files: list[Path], root: Path) -> str:
    """sha1 over (relative name, bytes) of every units file: identifies the packed source."""
    h = hashlib.sha1()
    for f in files:
        h.update(str(f.relative_to(root) if f != root else f.name).encode() + b"\0")
        for part in sorted(q for q in f.rglob("*") if q.is_file()) if f.is_dir() else [f]:
            h.update(part.name.encode() + b"\0")
            with open(part, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
    return h.hexdigest()


def id_hash(record_id: str) -> float:
    """Stable hash of an id in [0, 1)."""
    return int.from_bytes(hashlib.sha1(record_id.encode()).digest()[:8], "big") / 2.0**64


def is_val(record_id: str, fraction: float) -> bool:
    """True when ``record_id`` belongs to the validation split."""
    return id_hash(record_id) < fraction


def split_long(tokens: np.ndarray, context: int) -> list[np.ndarray]:
    """Cut a document into consecutive pieces of at most ``context`` tokens."""
    return [tokens[i:i + context] for i in range(0, max(len(tokens), 1), context)]


def document_tokens(record: dict, vocab: UnitVocab, where: str) -> np.ndarray:
    """``[bos] + units + 3 + [eos]`` of one units record (errors name ``where``)."""
    units = record.get("units")
    if not isinstance(units, list):
        raise ManifestError(f"{where}: record has no 'units' list")
    if len(units) == 0:
        raise ManifestError(f"{where}: empty 'units' list")
    body = vocab.encode_units(units, where=where)
    return np.concatenate([[vocab.bos_id], body, [vocab.eos_id]]).astype(np.int64)


CUT_FIX = "complete the file (re-run slam units on it) or delete that line"


def iter_documents(files: list[Path], root: Path, vocab: UnitVocab, failures: FailureLog
                   ) -> Iterator[tuple[str, np.ndarray]]:
    """Yield ``(id, tokens)`` for every good record; bad ones (and a cut last line) go to
    ``failures``."""
    for f in files:
        name = f.relative_to(root) if f != root else f.name
        for n, rec in enumerate(read_records(f, cut_tail="report", failures=failures,
                                             fix=CUT_FIX), 1):
            rid = str(rec.get("id", f"{name}:{n}"))
            where = f"{name} line {n} (id {rid})"
            try:
                yield rid, document_tokens(rec, vocab, where)
            except (VocabError, ManifestError, ValueError, TypeError) as e:
                failures.add(rid, f, str(e))


def _is_done(out: Path, source_hash: str, cfg: PackConfig) -> bool:
    try:
        index = read_index(out)
    except ShardError:
        return False
    return (index.get("units_hash") == source_hash and index.get("context") == cfg.context
            and index.get("val_fraction") == cfg.val_fraction
            and index.get("vocab", {}).get("n_units") == cfg.n_units)


def _write_splits(tmp: Path, docs: Iterator[tuple[str, np.ndarray]], cfg: PackConfig,
                  dtype: np.dtype) -> dict:
    writers = {s: ShardWriter(tmp, s, dtype) for s in ("train", "val")}
    best: tuple[float, int, int] | None = None  # lowest-hash train record: (hash, first doc, pieces)
    for rid, toks in docs:
        h = id_hash(rid)
        split = "val" if h < cfg.val_fraction else "train"  # is_val(rid, cfg.val_fraction)
        w = writers[split]
        pieces = split_long(toks, cfg.context)
        if split == "train" and (best is None or h < best[0]):
            best = (h, w.n_docs, len(pieces))
        for piece in pieces:
            w.add(piece)
    if not writers["val"].n_docs and cfg.val_fraction > 0 and best is not None:
        # at least one record for validation: move the lowest-hash train record (all its pieces)
        for _ in range(best[2]):
            writers["val"].add(writers["train"].drop_doc(best[1]))
    return {s: w.finish() for s, w in writers.items()}


def run_pack(cfg: PackConfig) -> Path:
    """Pack a units folder into token shards; returns the output folder."""
    if cfg.context < 2:
        raise ValueError(f"context must be >= 2, got {cfg.context}")
    root = Path(cfg.units)
    files = find_units_files(root)
    source = units_hash(files, root if root.is_dir() else root.parent)
    out = Path(cfg.out)
    if _is_done(out, source, cfg):
        log.info("%s is up to date with %s (%d files); nothing to do", out, root, len(files))
        return out
    vocab = UnitVocab(n_units=cfg.n_units)
    dtype = shard_dtype(vocab.size)  # uint16, or uint32 above 65 536 tokens
    failures = FailureLog(out.parent / f"{out.name}_failures.jsonl", stage="pack", strict=cfg.strict)
    with atomic_dir(out) as tmp:
        docs = iter_documents(files, root if root.is_dir() else root.parent, vocab, failures)
        splits = _write_splits(tmp, docs, cfg, dtype)
        n_docs = sum(s["n_docs"] for s in splits.values())
        if n_docs == 0:
            raise ValueError(f"{root}: no usable records ({failures.count} failed, see {failures.path})")
        index = {"format": FORMAT_VERSION, "dtype": dtype.name, "vocab": vocab.to_dict(),
                 "units_hash": source, "context": cfg.context, "val_fraction": cfg.val_fraction,
                 "source": str(root), "n_files": len(files), "n_failures": failures.count,
                 "splits": splits}
        dump_config(cfg, tmp / "config.yaml")
        atomic_write_json(tmp / "index.json", index)
    log.info("packed %d files -> %s: train %d tokens / %d docs, val %d tokens / %d docs, %d failures",
             len(files), out, splits["train"]["n_tokens"], splits["train"]["n_docs"],
             splits["val"]["n_tokens"], splits["val"]["n_docs"], failures.count)
    return out

