"""``slam eval``: score benchmark pairs with a SpeechLM checkpoint and write results.

Outputs (all written atomically) in ``out/``: ``<bench>_pairs.jsonl`` (one scored pair a
line), ``results.json`` (per bench: accuracy of the mean (primary) and summed variants, pair
counts, chance, breakdowns), ``config.yaml``, ``failures.jsonl`` (files that could not be
encoded; their pairs are left out) and the unit cache ``cache/``. Every accuracy comes with its
pair and key counts and a 95% Wilson interval, beside chance and the length-only baselines
(always pick the shorter / the longer member, in tokens), and a ``learned`` verdict; the
rules are spelled out in ``results.json`` under ``definitions`` (see :mod:`slamlm.eval.stats`). ZeroSpeech 2021 benches
also get the official submission files ``zr2021_submission/{lexical,syntactic}/<subset>.txt``
(mean log-prob; ``zr2021_submission_sum/`` for the summed one), so
``zerospeech2021-evaluate <dataset> out/zr2021_submission --no-phonetic --no-semantic``
re-scores them with the official code.

Example:
    >>> cfg = EvalConfig(checkpoint=Path("run/ckpt/step_00017625"),
    ...                  benches={"sblimp": "zr2021/syntactic"}, out=Path("run/eval"))
    >>> run_eval(cfg)                                               # doctest: +SKIP
    PosixPath('run/eval/results.json')
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from slamlm.eval.pairs import Pair
from slamlm.eval.score import PRIMARY, score_pairs, sequence_logprob, summarize
from slamlm.eval.stats import CI_METHOD, DEFINITIONS
from slamlm.eval.unitcache import dedup_units
from slamlm.vocab import UnitVocab

log = logging.getLogger(__name__)

UnitsFor = Callable[[list[str]], dict[str, "np.ndarray | None"]]


@dataclass(frozen=True)
class EvalConfig:
    """What to score and how. ``benches`` maps a name (sblimp, swuggy, ssc...) to a path."""

    checkpoint: Path = Path("")
    benches: dict[str, str] = field(default_factory=dict)
    out: Path = Path("eval")
    max_tokens: int = 16384  # padded tokens per forward
    row_len: int = 0  # packed row length; 0 = 128 on CPU, 1024 on GPU
    device: str = "auto"  # auto | cpu | cuda | cuda:1 ...
    threads: int = 0  # CPU torch threads; 0: auto, the fastest count now (OMP_NUM_THREADS wins)
    cache: Path | None = None  # unit cache folder; None = <out>/cache
    subset: str = "dev"  # ZR2021 subset when given the task folder
    encode_batch: int = 32
    strict: bool = False
    # CPU: score under bf16 autocast where bf16 matmuls are fast (native-bf16 CPUs; elsewhere
    # fp32 as before). bench/eval_precision_cpu.py measures the speed-up and the score change
    cpu_bf16: bool = False
    # "i/n" (or auto / slurm, as for slam units): score only the pairs whose id hashes to
    # shard i and write <bench>_pairs-<i>of<n>.jsonl + summary-<i>of<n>.json; join the
    # shards with `slam eval merge OUT`. None: every pair
    shard: str | None = None


def _side_key(side: str | list[int]) -> str | tuple[int, ...]:
    return side if isinstance(side, str) else tuple(side)


def pair_sequences(
    pairs: list[Pair], vocab: UnitVocab, units: dict[str, np.ndarray | None], bench: str
) -> tuple[list[np.ndarray], list[tuple[Pair, int, int]], list[Pair]]:
    """Token sequences ``[bos] + units + [eos]`` (one per distinct side) and pair -> indices.

    Returns (sequences, [(pair, pos index, neg index)], pairs skipped for a failed file).
    """
    index: dict[Any, int] = {}
    seqs: list[np.ndarray] = []
    scored, skipped = [], []
    for p in pairs:
        idx = []
        for side, name in ((p.positive, "positive"), (p.negative, "negative")):
            key = _side_key(side)
            if key not in index:
                u = units.get(side) if isinstance(side, str) else dedup_units(side)
                if u is None:
                    break
                toks = vocab.encode_units(u, where=f"{bench} pair {p.id} {name}")
                index[key] = len(seqs)
                seqs.append(np.concatenate([[vocab.bos_id], toks, [vocab.eos_id]]).astype(np.int64))
            idx.append(index[key])
        if len(idx) == 2:
            scored.append((p, idx[0], idx[1]))
        else:
            skipped.append(p)
    return seqs, scored, skipped


def score_benchmark(
    model, vocab: UnitVocab, pairs: list[Pair], units_for: UnitsFor | None, bench: str = "bench",
    max_tokens: int = 16384, row_len: int | None = None, cpu_bf16: bool = False,
) -> tuple[list[dict[str, Any]], list[Pair]]:
    """Per-pair records (log-probs sum/mean, scores) and the pairs skipped for failed files."""
    from slamlm.eval.likelihood import token_logprobs

    paths = [s for p in pairs for s in (p.positive, p.negative) if isinstance(s, str)]
    if paths and units_for is None:
        raise ValueError(f"{bench}: has audio files but no unit extractor was given")
    units = units_for(paths) if paths else {}
    seqs, scored, skipped = pair_sequences(pairs, vocab, units, bench)
    lps = token_logprobs(model, seqs, max_tokens=max_tokens, row_len=row_len or None,
                         pad_id=vocab.pad_id, progress=len(seqs) > 2000, cpu_bf16=cpu_bf16)
    stats = {v: np.array([sequence_logprob(lp, v) for lp in lps]) for v in ("sum", "mean")}
    pos_i = np.array([i for _, i, _ in scored], dtype=np.int64)
    neg_i = np.array([j for _, _, j in scored], dtype=np.int64)
    scores = {v: score_pairs(stats[v][pos_i], stats[v][neg_i]) for v in ("sum", "mean")}
    records = []
    for n, (p, i, j) in enumerate(scored):
        records.append({
            "id": p.id, "key": p.key, "group": p.group,
            "positive": p.positive if isinstance(p.positive, str) else "<units>",
            "negative": p.negative if isinstance(p.negative, str) else "<units>",
            "n_tokens_pos": len(seqs[i]), "n_tokens_neg": len(seqs[j]),
            "logp_pos_sum": stats["sum"][i], "logp_neg_sum": stats["sum"][j],
            "logp_pos_mean": stats["mean"][i], "logp_neg_mean": stats["mean"][j],
            "score_sum": scores["sum"][n], "score_mean": scores["mean"][n],
        })
    return [{k: (float(v) if isinstance(v, np.floating) else v) for k, v in r.items()}
            for r in records], skipped


def write_zr2021_files(out: Path, name: str, bench, records: list[dict[str, Any]],
                       taken: set[tuple[str, str, str]]) -> Path:
    """Official submission files of one ZR2021 bench (both variants); returns the mean one.

    A second bench of the same task and subset in one run gets ``zr2021_submission_<name>``.
    """
    from slamlm.eval.zr2021 import submission_scores, write_submission

    task = bench.kind.split("-", 1)[1]
    subset = bench.root.name if bench.root.name in ("dev", "test") else "dev"
    want = {Path(s).stem for p in bench.pairs for s in (p.positive, p.negative)}
    paths = {}
    for variant, base in (("mean", "zr2021_submission"), ("sum", "zr2021_submission_sum")):
        folder = base if (base, task, subset) not in taken else f"{base}_{name}"
        taken.add((folder, task, subset))
        scores = submission_scores(records, variant)
        paths[variant] = write_submission(out / folder, task, subset, scores)
    if len(scores) < len(want):
        log.warning("%s: %d of %d files have no score (failed to encode); the official scorer "
                    "needs them all, so %s is incomplete", name, len(want) - len(scores),
                    len(want), paths["mean"])
    return paths["mean"]


def _units_for_factory(meta: dict[str, Any], cfg: EvalConfig, device: str, failures,
                       seeds: Sequence[Path] = ()) -> UnitsFor:
    """A function paths -> units using the checkpoint's extractor (built on first use) + cache
    (+ the read-only unit files of ``seeds``: see :class:`slamlm.eval.unitcache.UnitCache`)."""
    from slamlm.eval.unitcache import UnitCache, encode_cached

    state: dict[str, Any] = {}

    def units_for(paths: list[str]) -> dict[str, np.ndarray | None]:
        if "ex" not in state:
            identity = meta.get("units")
            if not identity:
                raise ValueError(f"{cfg.checkpoint}/config.json has no 'units' extractor identity; "
                                 f"score unit lists (pairs.jsonl) or re-save the checkpoint")
            from slamlm.units.extractor import UnitExtractor

            state["ex"] = UnitExtractor.from_identity(identity, device=device)
            state["cache"] = UnitCache(cfg.cache or cfg.out / "cache", identity, seeds)
            if state["cache"].seeded:
                log.info("units: %d files' units come with their benchmarks (%s)",
                         state["cache"].seeded,
                         ", ".join(str(f) for f in state["cache"].seed_files))
        return encode_cached(state["ex"], paths, state["cache"], cfg.encode_batch, failures,
                             progress=len(paths) > 200)

    return units_for


def new_results(checkpoint: str, device: str) -> dict[str, Any]:
    """The head of ``results.json`` (benchmarks are added one by one)."""
    return {"checkpoint": checkpoint, "primary": PRIMARY, "device": device,
            "ci_method": CI_METHOD, "definitions": DEFINITIONS, "benchmarks": {}}


def bench_summary(out: Path, name: str, bench, records: list[dict[str, Any]], n_skipped: int,
                  seconds: float, taken: set[tuple[str, str, str]]) -> dict[str, Any]:
    """Write ``<name>_pairs.jsonl`` (+ ZR2021 submission files); returns the bench's results."""
    from slamlm.io import write_jsonl

    write_jsonl(out / f"{name}_pairs.jsonl", records)
    summary = summarize(records, bench.breakdown)
    summary.update(kind=bench.kind, path=str(bench.root), n_skipped=n_skipped,
                   seconds=round(seconds, 3))
    if bench.kind.startswith("zr2021-"):
        summary["submission"] = str(write_zr2021_files(out, name, bench, records, taken))
    log.info("%s: %d pairs, accuracy %s %s (mean) / %s (sum); length-only %s / %s; "
             "learned: %s", name, summary["n_pairs"], _pct(summary["accuracy_mean"]),
             _ci(summary["ci95_mean"]), _pct(summary["accuracy_sum"]),
             _pct(summary["length_shorter"]), _pct(summary["length_longer"]),
             summary["learned"])
    return summary


def run_eval(cfg: EvalConfig) -> Path:
    """Score every bench in ``cfg.benches``; returns the path of ``results.json`` (with
    ``--shard``: of this shard's ``summary-<i>of<n>.json``)."""
    import torch

    from slamlm.config import dump_config
    from slamlm.device import resolve_device, set_cpu_threads
    from slamlm.eval.readers import read_benchmark
    from slamlm.io import FailureLog, atomic_write_json, write_jsonl
    from slamlm.model import load_checkpoint
    from slamlm.units.shard import parse_shard, shard_of, shard_tag

    if not cfg.benches:
        raise ValueError("no benchmark given: add --bench NAME=PATH (e.g. sblimp=zr2021/syntactic)")
    if not str(cfg.checkpoint) or str(cfg.checkpoint) == ".":
        raise ValueError("no checkpoint given: slam eval CKPT --bench NAME=PATH --out DIR")
    rank, world = parse_shard(cfg.shard) if cfg.shard else (0, 1)
    tag = shard_tag(rank, world)
    benches = {name: read_benchmark(path, name, cfg.subset) for name, path in cfg.benches.items()}
    if cfg.device == "auto" and world > 1 and "LOCAL_RANK" in os.environ:
        if torch.cuda.is_available():  # torchrun --shard auto: one GPU per process
            cfg = replace(cfg, device=f"cuda:{os.environ['LOCAL_RANK']}")
    device = str(resolve_device(cfg.device))
    if device == "cpu":
        set_cpu_threads(cfg.threads, world)
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    model, meta = load_checkpoint(cfg.checkpoint, device=device, dtype=dtype)
    vocab = UnitVocab.from_dict(meta["vocab"])
    cfg.out.mkdir(parents=True, exist_ok=True)
    if world > 1:  # shards may share one folder: each its own files, unit cache included
        cfg = replace(cfg, cache=cfg.cache or cfg.out / f"cache{tag}")
        (cfg.out / f"summary{tag}.json").unlink(missing_ok=True)  # back once this shard is done
        (cfg.out / "results.json").unlink(missing_ok=True)  # stale until slam eval merge
    dump_config(cfg, cfg.out / f"config{tag}.yaml")
    failures = FailureLog(cfg.out / f"failures{tag}.jsonl", stage="eval", strict=cfg.strict)
    # a synthetic benchmark's folder (or its parent) may hold the units its matching counted
    seeds = [d for name, b in benches.items() for p in (Path(cfg.benches[name]), Path(b.root))
             for d in (p, p.parent)]
    units_for = _units_for_factory(meta, cfg, device, failures, seeds)
    results = new_results(str(cfg.checkpoint), device)
    shard_info: dict[str, Any] = {}
    taken: set[tuple[str, str, str]] = set()
    for name, bench in benches.items():
        t0 = time.perf_counter()
        pairs = bench.pairs if world == 1 else [p for p in bench.pairs
                                                if shard_of(p.id, world) == rank]
        records, skipped = score_benchmark(model, vocab, pairs, units_for, name,
                                           cfg.max_tokens, cfg.row_len, cfg.cpu_bf16)
        if world == 1:
            results["benchmarks"][name] = bench_summary(
                cfg.out, name, bench, records, len(skipped), time.perf_counter() - t0, taken)
            continue
        write_jsonl(cfg.out / f"{name}_pairs{tag}.jsonl", records)
        shard_info[name] = {"path": cfg.benches[name], "kind": bench.kind,
                            "n_pairs": len(pairs), "n_scored": len(records),
                            "skipped": [p.id for p in skipped],
                            "seconds": round(time.perf_counter() - t0, 3)}
        log.info("%s shard %d/%d: %d of %d pairs scored", name, rank, world, len(records),
                 len(bench.pairs))
    if failures.count:
        log.warning("%d files could not be encoded: see %s", failures.count, failures.path)
    if world > 1:
        return atomic_write_json(cfg.out / f"summary{tag}.json", {
            "shard": f"{rank}/{world}", "finished": True, "checkpoint": str(cfg.checkpoint),
            "device": device, "subset": cfg.subset, "benches": shard_info})
    return atomic_write_json(cfg.out / "results.json", results)


def _pct(x: float | None, digits: int = 2) -> str:
    return "n/a" if x is None else f"{100 * x:.{digits}f}%"


def _ci(ci: list[float] | None) -> str:
    return "" if not ci else f"[{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]"


def format_table(results: dict[str, Any]) -> str:
    """A plain-text table of ``results.json`` (one row per bench, breakdowns below it)."""
    head = (f"{'bench':<12} {'kind':<18} {'pairs':>6} {'keys':>5} {'acc(mean)':>9} "
            f"{'95% CI':>13} {'acc(sum)':>8} {'chance':>6} {'shorter':>7} {'longer':>7} learned")
    lines = [head, "-" * len(head)]
    for name, d in results.get("benchmarks", {}).items():
        lines.append(f"{name:<12} {d['kind']:<18} {d['n_pairs']:>6} {d.get('n_keys', ''):>5} "
                     f"{_pct(d['accuracy_mean']):>9} {_ci(d.get('ci95_mean')):>13} "
                     f"{_pct(d['accuracy_sum']):>8} {_pct(d['chance'], 1):>6} "
                     f"{_pct(d.get('length_shorter'), 1):>7} {_pct(d.get('length_longer'), 1):>7} "
                     f"{d.get('learned')}")
        for field_name, groups in d.get("breakdown", {}).items():
            for g, s in groups.items():
                label = f"  {field_name}={g}"
                lines.append(f"{label:<31.31} {s['n_pairs']:>6} {s.get('n_keys', ''):>5} "
                             f"{_pct(s['accuracy_mean']):>9} {_ci(s.get('ci95_mean')):>13} "
                             f"{_pct(s['accuracy_sum']):>8}")
    lines.append(f"primary metric: accuracy({results.get('primary', PRIMARY)}), "
                 f"length-normalised log-prob; 95% CI: "
                 f"{results.get('ci_method', CI_METHOD)} over keys; shorter/longer: always "
                 f"pick the member with fewer/more tokens; learned: CI above chance and "
                 f"accuracy above both")
    return "\n".join(lines)
