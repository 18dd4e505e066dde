"""What the demo's units and benchmarks allow: a count n-gram model trained on every training
unit, scored on the synthetic benchmarks exactly like the SpeechLM (bos + units + eos, mean and
summed log-prob, key-averaged, 95% interval, length-only baselines, ``learned``).

A transformer trained for 5 minutes sees each story less than once; an interpolated
Witten-Bell n-gram fit on the whole folder is the cheap upper reference for "what local unit
statistics of this data can tell": if it is at chance on a benchmark, no amount of training on
these units will help there, and the lever is the units or the items, not the model.

Usage (after a ``slam demo --out RUN``; the eval's unit cache holds the benchmark units):

    python bench/ngram_ceiling.py --run RUN [--orders 1 2 3 4 6 8]

Example:
    >>> lm = NGram(2, vocab=4); lm.fit([[0, 1, 2, 1, 2]])
    >>> lm.logprob([0, 1, 2]) > lm.logprob([0, 2, 1])
    True
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np


class NGram:
    """Interpolated Witten-Bell n-gram over integer tokens (order n, vocabulary size ``vocab``)."""

    def __init__(self, n: int, vocab: int):
        self.n, self.vocab = n, vocab
        # counts[k][history tuple of length k][token] for k = 0..n-1
        self.counts: list[dict[tuple[int, ...], dict[int, int]]] = [defaultdict(dict) for _ in range(n)]
        self.totals: list[dict[tuple[int, ...], int]] = [defaultdict(int) for _ in range(n)]

    def fit(self, docs: list[list[int]]) -> NGram:
        for d in docs:
            for i, w in enumerate(d):
                for k in range(self.n):
                    if i - k < 0:
                        break
                    h = tuple(d[i - k:i])
                    c = self.counts[k][h]
                    c[w] = c.get(w, 0) + 1
                    self.totals[k][h] += 1
        return self

    def prob(self, hist: tuple[int, ...], w: int) -> float:
        p = 1.0 / self.vocab
        for k in range(min(len(hist), self.n - 1) + 1):
            h = hist[len(hist) - k:] if k else ()
            c = self.counts[k].get(h)
            if not c:
                break
            tot, types = self.totals[k][h], len(c)
            p = (c.get(w, 0) + types * p) / (tot + types)
        return p

    def token_logprobs(self, seq: list[int]) -> list[float]:
        """Log-probs of ``seq[1:]`` given what precedes (``seq[0]`` is the bos)."""
        return [math.log(self.prob(tuple(seq[max(0, i - self.n + 1):i]), seq[i]))
                for i in range(1, len(seq))]

    def logprob(self, seq: list[int]) -> float:
        return float(sum(self.token_logprobs(seq)))


def _training_docs(run: Path) -> tuple[list[list[int]], int]:
    """Deduplicated unit sequences of the demo's training stories (validation files left out
    is not needed: the benchmarks use held-out names and their own seed streams)."""
    docs = []
    for f in sorted((run / "units").glob("*.jsonl")):
        for line in f.open():
            r = json.loads(line)
            if isinstance(r, dict) and isinstance(r.get("units"), list):
                docs.append([int(u) for u in r["units"]])
    if not docs:
        sys.exit(f"no units records under {run / 'units'}")
    return docs, max(max(d) for d in docs if d) + 1


def _bench_units(run: Path, paths: list[str], cache_dir: Path | None) -> dict[str, list[int]]:
    """Audio path -> deduplicated units by the run's own extractor, through the demo eval's
    unit cache (``RUN/eval/cache``: files the eval already encoded cost nothing)."""
    from slamlm.eval.unitcache import UnitCache, encode_cached
    from slamlm.units.extractor import UnitExtractor

    identity = json.loads((run / "units" / "identity.json").read_text())
    cache = UnitCache(cache_dir or run / "eval" / "cache", identity)
    ex = UnitExtractor.from_identity(identity, device="cpu")
    try:
        got = encode_cached(ex, paths, cache)
    finally:
        cache.close()
    return {p: [int(u) for u in v] for p, v in got.items() if v is not None}


def main(argv: list[str] | None = None) -> None:
    from slamlm.demo import benches_in
    from slamlm.eval.readers import read_benchmark
    from slamlm.eval.score import summarize

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", type=Path, required=True, help="a finished `slam demo --out` folder")
    ap.add_argument("--orders", type=int, nargs="+", default=[1, 2, 3, 4, 6, 8])
    ap.add_argument("--json", type=Path, default=None, help="also write the table here")
    ap.add_argument("--cache", type=Path, default=None,
                    help="unit cache folder (default RUN/eval/cache, the demo eval's)")
    ap.add_argument("--bench", type=Path, default=None,
                    help="benchmarks folder (default RUN/synth/bench, the demo's)")
    args = ap.parse_args(argv)

    docs, k = _training_docs(args.run)
    bos, eos = k, k + 1  # any two ids outside the units: only their statistics matter
    docs = [[bos, *d, eos] for d in docs]
    benches = {name: read_benchmark(path, name) for name, path in
               benches_in(args.bench or args.run / "synth" / "bench").items()}
    cache = _bench_units(args.run, sorted({str(s) for b in benches.values() for p in b.pairs
                                           for s in (p.positive, p.negative)}), args.cache)
    print(f"{len(docs)} training documents, {sum(map(len, docs))} tokens, {k} units; "
          f"{len(cache)} benchmark files in the eval cache")
    rows = []
    for n in args.orders:
        lm = NGram(n, vocab=k + 2).fit(docs)
        for name, bench in benches.items():
            recs = []
            for p in bench.pairs:
                pos, neg = cache.get(str(p.positive)), cache.get(str(p.negative))
                if pos is None or neg is None:
                    continue
                lp = lm.token_logprobs([bos, *pos, eos])
                ln = lm.token_logprobs([bos, *neg, eos])
                recs.append({"key": p.key, "group": p.group,
                             "score_mean": float(np.mean(lp) > np.mean(ln)),
                             "score_sum": float(sum(lp) > sum(ln)),
                             "n_tokens_pos": len(lp), "n_tokens_neg": len(ln)})
            s = summarize(recs)
            rows.append({"order": n, "bench": name, "pairs": s["n_pairs"],
                         "mean": s["accuracy_mean"], "ci_mean": s["ci95_mean"],
                         "sum": s["accuracy_sum"], "ci_sum": s["ci95_sum"],
                         "shorter": s["length_shorter"], "learned_mean": s["learned_mean"],
                         "learned_sum": s["learned_sum"]})
    print("| order | bench | pairs | mean | 95% CI | sum | 95% CI | length: shorter | learned (mean/sum) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        def pct(x):
            return "n/a" if x is None else f"{100 * x:.1f}"

        def ci(c):
            return "n/a" if c is None else f"[{100 * c[0]:.1f}, {100 * c[1]:.1f}]"
        print(f"| {r['order']} | {r['bench']} | {r['pairs']} | {pct(r['mean'])} | {ci(r['ci_mean'])} "
              f"| {pct(r['sum'])} | {ci(r['ci_sum'])} | {pct(r['shorter'])} "
              f"| {r['learned_mean']}/{r['learned_sum']} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
