"""``slam units merge OUT``: the shards of a sharded ``slam units extract`` -> one units file.

Checks before anything is kept: every shard ``0..n-1`` is present and finished (its
``summary-<i>of<n>.json`` exists and its record count matches its files), every id in shard
``i`` hashes to ``i``, no id appears twice, and (with ``--input``) no input id is missing (an
input is either a record or a failure). Then, streamed (one pass over the records, a set of
ids in memory): ``units.jsonl`` (or ``.parquet`` / ``.hf``), ``failures.jsonl`` and
``summary.json`` (last: the finished marker), each written atomically; the shard files move
to ``OUT/shards/`` so readers see each record once. A re-run merges again from there.

Example:
    $ slam units merge run/units/ll                      # after the 32 array jobs finished
    $ slam units merge run/units/ll --input /data/librilight --format parquet
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slamlm.corpora.records import read_records, write_records
from slamlm.io import atomic_write_json, read_jsonl, write_jsonl
from slamlm.units.inputs import input_options, list_inputs
from slamlm.units.runner import CUT_FIX, OUT_FORMATS, UnitsConfig, units_schema
from slamlm.units.shard import SHARD_RE, shard_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MergeConfig:
    """Join the shards of one ``slam units extract`` output folder."""

    folder: str = ""        # the --out folder the shards were written to
    input: str = ""         # the extraction input; given: check that no input id is missing
    shards: int = 0         # n of --shard i/n; 0: from the shard file names
    format: str = "jsonl"   # merged file: jsonl | parquet | hf


class ShardError(ValueError):
    """A shard that is missing, unfinished or inconsistent (the message says how to fix it)."""


def _shard_files(folder: Path) -> dict[int, dict[int, list[Path]]]:
    """n -> i -> files tagged ``-<i>of<n>`` in ``folder`` and ``folder/shards``."""
    found: dict[int, dict[int, list[Path]]] = {}
    for d in (folder, folder / "shards"):
        for p in sorted(d.glob("*of*")) if d.is_dir() else ():
            m = SHARD_RE.search(p.name)
            if m and p.name.split("-")[0] in ("units", "failures", "summary"):
                found.setdefault(int(m[2]), {}).setdefault(int(m[1]), []).append(p)
    return found


def rerun_hint(folder: Path, i: int, n: int) -> str:
    """The command that (re)runs shard i of n, from the folder's config.yaml when present."""
    import yaml

    cfg_path = folder / "config.yaml"
    cfg = (yaml.safe_load(cfg_path.read_text()) or {}) if cfg_path.is_file() else {}
    words = ["slam", "units", "extract", str(cfg.get("input") or "INPUT"), "--out", str(folder)]
    for key in ("encoder", "kmeans", "layer", "format"):
        if cfg.get(key) is not None and cfg.get(key) != getattr(UnitsConfig, key):
            words += [f"--{key}", str(cfg[key])]
    return shlex.join([*words, "--shard", f"{i}/{n}"])


def _count_records(files: list[Path]) -> int:
    return sum(1 for f in files for _ in read_records(f))  # a cut last line is not counted


def check_shards(folder: Path, n: int = 0) -> list[dict[str, Any]]:
    """Per shard ``{"i", "summary", "units": [files], "failures": file|None}``; raises
    :class:`ShardError` naming the first missing or unfinished shard and its rerun command."""
    found = _shard_files(folder)
    if not found:
        raise ShardError(f"{folder}: no shard files (units-<i>of<n>.*, summary-<i>of<n>.json); "
                         f"run slam units extract --shard i/n into it first")
    if n == 0:
        if len(found) > 1:
            raise ShardError(f"{folder}: shard files of several splits ({sorted(found)} shards); "
                             f"give --shards N, and delete the files of the others")
        n = next(iter(found))
    shards = []
    for i in range(n):
        files = found.get(n, {}).get(i, [])
        tag = f"-{i}of{n}"
        summ = [p for p in files if p.name == f"summary{tag}.json"]
        units = [p for p in files if p.name.startswith(f"units{tag}.")]
        fails = [p for p in files if p.name == f"failures{tag}.jsonl"]
        if not summ:
            held = (f"{units[0].name} holds {_count_records(units) if units else 0} records "
                    f"so far" if units else "no units file")
            state = "is unfinished" if units or fails else "is missing"
            raise ShardError(f"{folder}: shard {i}/{n} {state} (no summary{tag}.json; {held}): "
                             f"run it (a rerun resumes): {rerun_hint(folder, i, n)}")
        summary = json.loads(summ[0].read_text())
        want = {Path(f).name for f in summary.get("files", [])}
        have = {p.name for p in units}
        if want - have or summary.get("finished") is False:
            raise ShardError(f"{folder}: shard {i}/{n} is incomplete: {summ[0].name} lists "
                             f"{sorted(want - have)} which are not there: "
                             f"{rerun_hint(folder, i, n)}")
        units = [p for p in units if p.name in want]
        shards.append({"i": i, "summary": summ[0], "records": int(summary.get("records", -1)),
                       "units": units, "failures": fails[0] if fails else None})
    return shards


def _merged_records(shards: list[dict[str, Any]], n: int, seen: set[str],
                    expected: set[str] | None, failed: set[str], folder: Path,
                    stats: dict[str, float]) -> Iterator[dict[str, Any]]:
    """Every shard's records in shard order, checked as they stream past."""
    for s in shards:
        count = 0
        for f in s["units"]:
            for r in read_records(f, cut_tail="error", fix=CUT_FIX):
                rid = str(r["id"])
                if shard_of(rid, n) != s["i"]:
                    raise ShardError(f"{f}: record {rid!r} belongs to shard {shard_of(rid, n)}/"
                                     f"{n}, not {s['i']}/{n} (files of another split mixed in?)")
                if rid in seen:
                    raise ShardError(f"{f}: id {rid!r} appears twice among the shards")
                seen.add(rid)
                count += 1
                stats["seconds"] += float(r.get("seconds") or 0.0)
                yield r
        if count != s["records"]:
            raise ShardError(f"{folder}: shard {s['i']}/{n} is incomplete: "
                             f"{s['summary'].name} says {s['records']} records, its files hold "
                             f"{count}: {rerun_hint(folder, s['i'], n)}")
    if expected is not None:
        missing = sorted(expected - seen - failed)
        if missing:
            shown = ", ".join(f"{m!r} (shard {shard_of(m, n)})" for m in missing[:5])
            raise ShardError(f"{folder}: {len(missing)} input ids are neither units nor "
                             f"failures: {shown}; rerun those shards: "
                             f"{rerun_hint(folder, shard_of(missing[0], n), n)}")


def _failures(shards: list[dict[str, Any]], units: set[str]) -> Iterator[dict[str, Any]]:
    seen: set[str] = set()
    for s in shards:
        for r in read_jsonl(s["failures"], skip_bad=True) if s["failures"] else ():
            rid = str(r.get("id"))
            if rid not in seen and rid not in units:
                seen.add(rid)
                yield r


def run_units_merge(cfg: MergeConfig) -> Path:
    """Check and join the shards of ``cfg.folder``; returns the merged units file."""
    if not cfg.folder:
        raise ValueError("slam units merge needs the output folder of the sharded extraction")
    if cfg.format not in OUT_FORMATS:
        raise ValueError(f"--format {cfg.format!r}: choose one of {', '.join(OUT_FORMATS)}")
    folder = Path(cfg.folder)
    shards = check_shards(folder, cfg.shards)
    n = len(shards)
    failed: set[str] = set()
    for s in shards:
        for r in read_jsonl(s["failures"], skip_bad=True) if s["failures"] else ():
            failed.add(str(r.get("id")))
    expected = None
    if cfg.input:
        ucfg = UnitsConfig(input=cfg.input, out=str(folder))
        expected = {it.id for it in list_inputs(cfg.input, **input_options(ucfg))}
    seen: set[str] = set()
    stats = {"seconds": 0.0}
    records = _merged_records(shards, n, seen, expected, failed, folder, stats)
    target = folder / f"units{OUT_FORMATS[cfg.format]}"
    if cfg.format == "jsonl":
        write_jsonl(target, records)
    else:
        write_records(target, records, schema=units_schema())
    for ext in OUT_FORMATS.values():  # an earlier merge into another format
        old = folder / f"units{ext}"
        if old != target and old.exists():
            shutil.rmtree(old) if old.is_dir() else old.unlink()
    write_jsonl(folder / "failures.jsonl", _failures(shards, seen))
    n_fail = sum(1 for _ in read_jsonl(folder / "failures.jsonl"))
    secs = stats["seconds"]
    store = folder / "shards"
    store.mkdir(exist_ok=True)
    moved = []
    for s in shards:
        for p in [*s["units"], s["failures"], s["summary"]]:
            if p is not None and p.parent != store:
                os.replace(p, store / p.name)
            if p is not None:
                moved.append(p.name)
    atomic_write_json(folder / "summary.json", {
        "shard": "0/1", "finished": True, "records": len(seen), "failed": n_fail,
        "audio_hours": round(secs / 3600, 6), "files": [target.name],
        "merged_from": f"{n} shards (kept in shards/)"})
    log.info("merged %d shards of %s: %d records, %d failed, %.3f audio-h -> %s", n, folder,
             len(seen), n_fail, secs / 3600, target)
    return target
