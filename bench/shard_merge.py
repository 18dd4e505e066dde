"""How `slam units merge` and `slam eval merge` scale: time per record at growing shard sizes.

Synthetic shard folders (records as `slam units extract --shard i/n` / `slam eval --shard
i/n` write them, ids hashed to their shard), merged with the real commands; beside them the
I/O floor: the same records read and written once with no checks (a plain concatenation).
Linear means the us/record column stays flat as the shards grow.

    python bench/shard_merge.py                  # 3 shards of 2k, 10k, 50k records
    python bench/shard_merge.py --sizes 1000 --shards 4
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from slamlm.eval.merge import EvalMergeConfig, run_eval_merge
from slamlm.io import atomic_write_json, read_jsonl, write_jsonl
from slamlm.units.merge import MergeConfig, run_units_merge
from slamlm.units.shard import shard_of


def units_folder(root: Path, per_shard: int, n: int) -> Path:
    rng = np.random.default_rng(0)
    buckets: list[list[dict]] = [[] for _ in range(n)]
    i = 0
    while min(len(b) for b in buckets) < per_shard:
        rid = f"spk{i % 97}/utt{i:08d}"
        i += 1
        b = buckets[shard_of(rid, n)]
        if len(b) < per_shard:
            u = rng.integers(0, 500, 40).tolist()
            b.append({"id": rid, "path": f"/data/{rid}.flac", "units": u, "durations": [1] * 40,
                      "n_frames": 40, "sr": 16000, "seconds": 0.8, "encoder": "mel",
                      "kmeans_hash": "abc"})
    for k, recs in enumerate(buckets):
        write_jsonl(root / f"units-{k}of{n}.jsonl", recs)
        atomic_write_json(root / f"summary-{k}of{n}.json", {
            "shard": f"{k}/{n}", "finished": True, "records": len(recs), "failed": 0,
            "files": [f"units-{k}of{n}.jsonl"]})
    return root


def eval_folder(root: Path, per_shard: int, n: int) -> Path:
    rng = np.random.default_rng(1)
    total = per_shard * n
    pairs = [{"id": f"p{i}", "positive": rng.integers(0, 500, 20).tolist(),
              "negative": rng.integers(0, 500, 20).tolist()} for i in range(total)]
    write_jsonl(root / "pairs.jsonl", pairs)
    buckets: list[list[dict]] = [[] for _ in range(n)]
    for p in pairs:
        a, b = rng.normal(-60, 5, 2)
        buckets[shard_of(p["id"], n)].append({
            "id": p["id"], "key": p["id"], "group": {}, "positive": "<units>",
            "negative": "<units>", "n_tokens_pos": 22, "n_tokens_neg": 22,
            "logp_pos_sum": a, "logp_neg_sum": b, "logp_pos_mean": a / 22,
            "logp_neg_mean": b / 22, "score_sum": float(a > b), "score_mean": float(a > b)})
    for k, recs in enumerate(buckets):
        write_jsonl(root / f"mine_pairs-{k}of{n}.jsonl", recs)
        atomic_write_json(root / f"summary-{k}of{n}.json", {
            "shard": f"{k}/{n}", "finished": True, "checkpoint": "ck", "device": "cpu",
            "subset": "dev", "benches": {"mine": {
                "path": str(root / "pairs.jsonl"), "kind": "manifest", "n_pairs": len(recs),
                "n_scored": len(recs), "skipped": [], "seconds": 0.0}}})
    return root


def floor(files: list[Path], out: Path) -> float:
    t0 = time.perf_counter()
    write_jsonl(out, (r for f in files for r in read_jsonl(f)))
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[2000, 10000, 50000])
    ap.add_argument("--shards", type=int, default=3)
    args = ap.parse_args()
    n = args.shards
    print(f"{'merge':<6} {'shards':>6} {'per shard':>9} {'records':>8} {'merge s':>8} "
          f"{'us/rec':>7} {'floor s':>8} {'floor us/rec':>12}")
    for kind in ("units", "eval"):
        for size in args.sizes:
            root = Path(tempfile.mkdtemp(prefix="shard_merge_"))
            try:
                if kind == "units":
                    units_folder(root, size, n)
                    base = floor(sorted(root.glob("units-*")), root / "floor.jsonl")
                    (root / "floor.jsonl").unlink()
                    t0 = time.perf_counter()
                    run_units_merge(MergeConfig(folder=str(root)))
                else:
                    eval_folder(root, size, n)
                    base = floor(sorted(root.glob("mine_pairs-*")), root / "floor.jsonl")
                    t0 = time.perf_counter()
                    res = json.loads(run_eval_merge(EvalMergeConfig(out=str(root))).read_text())
                    assert res["benchmarks"]["mine"]["n_pairs"] == size * n
                took = time.perf_counter() - t0
                total = size * n
                print(f"{kind:<6} {n:>6} {size:>9} {total:>8} {took:>8.2f} "
                      f"{1e6 * took / total:>7.1f} {base:>8.2f} {1e6 * base / total:>12.1f}")
            finally:
                shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
