"""``slam eval merge OUT``: the shards of ``slam eval --shard i/n`` -> the unsharded results.

Shards may share one folder (``OUT``) or write one each (``--dirs a,b,...``). Checked first:
every shard ``0..n-1`` has its ``summary-<i>of<n>.json`` (written last: the finished marker),
all name the same checkpoint and benches, each shard's pairs file holds as many records as its
summary says, every record's id hashes to its shard, and every pair of the bench (re-read
from its path) is scored or listed as skipped in exactly one shard. Then the records are put
back in bench order and ``<bench>_pairs.jsonl``, the ZR2021 submission files, a merged
``failures.jsonl`` and ``results.json`` (last) are written as an unsharded run writes them, so
the accuracies, intervals, length baselines and verdicts are the same numbers.

Example:
    $ slam eval merge run/eval                          # shards wrote into run/eval
    $ slam eval merge run/eval --dirs node0/eval,node1/eval
"""

from __future__ import annotations

import json
import logging
import shlex
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slamlm.eval.runner import bench_summary, new_results
from slamlm.io import atomic_write_json, read_jsonl, write_jsonl
from slamlm.units.shard import SHARD_RE, shard_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvalMergeConfig:
    """Join the shards of a sharded ``slam eval``."""

    out: str = ""                                   # folder for results.json (and the shards' folder)
    dirs: list[str] = field(default_factory=list)   # shard folders; empty: only OUT
    shards: int = 0                                 # n of --shard i/n; 0: from the file names


class EvalShardError(ValueError):
    """A missing, unfinished or inconsistent eval shard (the message says how to fix it)."""


def _summaries(dirs: list[Path]) -> dict[int, dict[int, Path]]:
    found: dict[int, dict[int, Path]] = {}
    for d in dirs:
        for p in sorted(d.glob("summary-*of*.json")):
            m = SHARD_RE.fullmatch(p.name[len("summary"):-len(".json")])
            if m:
                found.setdefault(int(m[2]), {})[int(m[1])] = p
    return found


def _rerun(head: dict[str, Any], out: Path, i: int, n: int) -> str:
    words = ["slam", "eval", str(head.get("checkpoint") or "CKPT")]
    for name, b in (head.get("benches") or {}).items():
        words += ["--bench", f"{name}={b['path']}"]
    return shlex.join([*words, "--out", str(out), "--shard", f"{i}/{n}"])


def check_eval_shards(dirs: list[Path], n: int = 0) -> list[tuple[Path, dict[str, Any]]]:
    """(summary path, summary) per shard 0..n-1; raises naming a missing or mismatched one."""
    found = _summaries(dirs)
    where = ", ".join(map(str, dirs))
    if not found:
        raise EvalShardError(f"{where}: no summary-<i>of<n>.json: no shard of slam eval --shard "
                             f"i/n has finished there (a running or killed shard writes it last)")
    if n == 0:
        if len(found) > 1:
            raise EvalShardError(f"{where}: summaries of several splits ({sorted(found)} shards); "
                                 f"give --shards N")
        n = next(iter(found))
    have = found.get(n, {})
    any_path = next(iter(have.values()), None) or next(iter(next(iter(found.values())).values()))
    head = json.loads(any_path.read_text())
    out: list[tuple[Path, dict[str, Any]]] = []
    for i in range(n):
        if i not in have:
            raise EvalShardError(f"{where}: eval shard {i}/{n} is missing or unfinished (no "
                                 f"summary-{i}of{n}.json): run it: {_rerun(head, dirs[0], i, n)}")
        s = json.loads(have[i].read_text())
        for key in ("checkpoint", "subset"):
            if s.get(key) != head.get(key):
                raise EvalShardError(f"{have[i]}: {key} {s.get(key)!r} differs from "
                                     f"{any_path.name}'s {head.get(key)!r}: shards of one eval "
                                     f"must score the same checkpoint and benches")
        if sorted(s.get("benches", {})) != sorted(head.get("benches", {})):
            raise EvalShardError(f"{have[i]}: benches {sorted(s['benches'])} differ from "
                                 f"{any_path.name}'s {sorted(head['benches'])}")
        out.append((have[i], s))
    return out


def _shard_records(path: Path, name: str, i: int, n: int, info: dict[str, Any]
                   ) -> Iterator[dict[str, Any]]:
    pairs = path.parent / f"{name}_pairs-{i}of{n}.jsonl"
    if not pairs.is_file():
        raise EvalShardError(f"{path}: shard {i}/{n} finished but {pairs.name} is not there: "
                             f"rerun that shard")
    count = 0
    for r in read_jsonl(pairs, cut_tail="error"):
        if shard_of(str(r["id"]), n) != i:
            raise EvalShardError(f"{pairs}: pair {r['id']!r} belongs to shard "
                                 f"{shard_of(str(r['id']), n)}/{n}, not {i}/{n}")
        count += 1
        yield r
    if count != info["n_scored"]:
        raise EvalShardError(f"{pairs}: {count} records, {path.name} says {info['n_scored']}: "
                             f"the file was cut or changed; rerun shard {i}/{n}")


def _checked_bench(name: str, info: dict[str, Any], head: dict[str, Any],
                   shards: list[tuple[Path, dict[str, Any]]], first: Path
                   ) -> tuple[Any, list[dict[str, Any]], int]:
    """(bench, its records in bench order, skipped count), every shard's part checked."""
    from slamlm.eval.readers import read_benchmark

    n = len(shards)
    bench = read_benchmark(info["path"], name, head.get("subset", "dev"))
    per_shard = Counter(shard_of(p.id, n) for p in bench.pairs)
    by_id: dict[str, dict[str, Any]] = {}
    skipped: set[str] = set()
    for i, (path, s) in enumerate(shards):
        mine = s["benches"][name]
        if mine["n_pairs"] != per_shard[i]:
            raise EvalShardError(f"{path}: {name} shard {i}/{n} scored {mine['n_pairs']} "
                                 f"pairs, {info['path']} now gives it {per_shard[i]}: the bench "
                                 f"changed; rerun that shard")
        for r in _shard_records(path, name, i, n, mine):
            if str(r["id"]) in by_id:
                raise EvalShardError(f"{path.parent}: {name} pair {r['id']!r} scored twice")
            by_id[str(r["id"])] = r
        skipped.update(mine["skipped"])
    missing = [p.id for p in bench.pairs if p.id not in by_id and p.id not in skipped]
    if missing:
        i = shard_of(missing[0], n)
        raise EvalShardError(f"{name}: {len(missing)} pairs are in no shard (first "
                             f"{missing[0]!r}, shard {i}/{n}): {_rerun(head, first, i, n)}")
    return bench, [by_id[p.id] for p in bench.pairs if p.id in by_id], len(skipped)


def run_eval_merge(cfg: EvalMergeConfig) -> Path:
    """Check the shards and write the unsharded outputs to ``cfg.out``; returns results.json."""
    if not cfg.out:
        raise ValueError("slam eval merge needs OUT (the folder for results.json)")
    out = Path(cfg.out)
    dirs = [Path(d) for d in cfg.dirs] or [out]
    shards = check_eval_shards(dirs, cfg.shards)
    n = len(shards)
    head = shards[0][1]
    results = new_results(head["checkpoint"], head["device"])
    out.mkdir(parents=True, exist_ok=True)
    checked = {name: _checked_bench(name, info, head, shards, dirs[0])
               for name, info in head["benches"].items()}  # every check before any write
    taken: set[tuple[str, str, str]] = set()
    for name, (bench, records, n_skipped) in checked.items():
        seconds = sum(s["benches"][name]["seconds"] for _, s in shards)
        results["benchmarks"][name] = bench_summary(out, name, bench, records, n_skipped,
                                                    seconds, taken)
    fails = [path.parent / f"failures-{i}of{n}.jsonl" for i, (path, _) in enumerate(shards)]
    write_jsonl(out / "failures.jsonl", (r for f in fails if f.is_file()
                                         for r in read_jsonl(f, skip_bad=True)))
    log.info("merged %d eval shards of %s", n, ", ".join(map(str, dirs)))
    return atomic_write_json(out / "results.json", results)
