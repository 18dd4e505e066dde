"""Shortcut control: a copy of a units folder with every document's units shuffled.

Shuffling the order of a document's (deduplicated) units destroys its linguistic content
(words, syntax, story) but keeps what an acoustic or length shortcut could use: the number
of units of every document and its unit histogram. A model pretrained on the shuffled copy
can only learn unit frequencies; on benchmarks that test content it must stay at chance. If
it does not, the benchmark can be won without content (unit histogram or length), and the
real model's score on it is not evidence of learning.

Units and their durations move together, so ``sum(durations) == n_frames`` still holds; the
order is drawn per document from ``Random(f"{seed}/{id}")`` (independent of file order).
Every other file (``identity.json``, the k-means, configs) is copied, so ``slam pack``,
``slam init --units-identity`` and ``slam eval`` accept the copy as they do the original.

Example:
    >>> rec = {"id": "a", "units": [1, 2, 3, 4], "durations": [1, 1, 2, 1], "n_frames": 5}
    >>> out = shuffle_record(rec, seed=0)
    >>> sorted(out["units"]), len(out["units"]), sum(out["durations"])
    ([1, 2, 3, 4], 4, 5)
"""

from __future__ import annotations

import logging
import random
import shutil
from pathlib import Path
from typing import Any

from slamlm.corpora.records import read_records, write_records
from slamlm.io import atomic_dir, atomic_write_json, read_jsonl, write_jsonl

log = logging.getLogger(__name__)

UNIT_SUFFIXES = (".jsonl", ".jsonl.gz")


def shuffle_record(rec: dict[str, Any], seed: int = 0) -> dict[str, Any]:
    """A copy of a units record with ``units`` (and ``durations``) in a random order."""
    units = list(rec.get("units") or [])
    order = list(range(len(units)))
    random.Random(f"{seed}/{rec.get('id', '')}").shuffle(order)
    out = dict(rec, units=[units[i] for i in order])
    durations = rec.get("durations")
    if isinstance(durations, list) and len(durations) == len(units):
        out["durations"] = [durations[i] for i in order]
    return out


def _is_units_file(p: Path) -> bool:
    return p.name.endswith(UNIT_SUFFIXES) and not p.name.startswith(("failures", "."))


def shuffle_units_dir(src: str | Path, dst: str | Path, seed: int = 0) -> Path:
    """Write ``dst``: ``src`` with every units file's documents shuffled (see module doc).

    Returns ``dst``; it holds ``shuffled.json`` (source, seed, documents, units) as a marker.
    """
    src, dst = Path(src), Path(dst)
    if not src.is_dir():
        raise FileNotFoundError(f"{src}: not a units folder (run slam units first)")
    if dst.resolve() == src.resolve() or src.resolve() in dst.resolve().parents:
        raise ValueError(f"{dst}: write the shuffled copy outside {src}")
    docs = units = 0
    with atomic_dir(dst) as tmp:
        for p in sorted(src.rglob("*")):
            rel = p.relative_to(src)
            if any(q.suffix == ".hf" for q in rel.parents):
                continue  # inside a units.hf dataset folder: shuffled as a whole below
            is_table = p.name.endswith((".parquet", ".hf")) and not p.name.startswith(".")
            if not (p.is_file() or (is_table and p.is_dir())):
                continue
            target = tmp / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if is_table:  # parquet / HF units: the same shuffle, written in the same form
                recs = [shuffle_record(r, seed) for r in read_records(p)]
                write_records(target, recs)
            elif not _is_units_file(p):
                shutil.copy2(p, target)
                continue
            else:
                recs = [shuffle_record(r, seed) for r in read_jsonl(p)]
                write_jsonl(target, recs)
            docs += len(recs)
            units += sum(len(r.get("units") or []) for r in recs)
        if docs == 0:
            raise FileNotFoundError(f"{src}: no *.jsonl / *.jsonl.gz / *.parquet / *.hf units "
                                    f"files")
        atomic_write_json(tmp / "shuffled.json", {"source": str(src.resolve()), "seed": seed,
                                                  "documents": docs, "units": units})
    log.info("shortcut control: %d documents (%d units) shuffled into %s", docs, units, dst)
    return dst
