"""CPU training throughput of the demo's model when the machine is shared: torch threads
(1 vs all cores) x OpenMP wait policy, under 0, 1 and 2 competing single-threaded jobs, and
which thread count ``slamlm.device.pick_cpu_threads`` (the training loop's ``threads: 0``)
chooses in each case.

Why: on a 2-core box a 2-thread torch step waits at every parallel region for its slowest
thread; when another job holds a core, one of our threads is descheduled for whole time slices
and every matmul stalls (the issue's demo trained 21 steps at ~270 tokens/s).

Each cell is its own subprocess (the wait policy is read when OpenMP starts); the competing
jobs are ``nice -n 10`` processes multiplying fp32 matrices on one thread, started by this
script. Measure with nothing else running.

    python bench/cpu_threads_under_load.py            # ~4 min
    python bench/cpu_threads_under_load.py --quick    # ~1 min

Example:
    >>> # python bench/cpu_threads_under_load.py --loads 0 2 --seconds 10
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

CHILD = r"""
import json, sys, time, torch
sys.path.insert(0, {bench!r})
from train_throughput import make_our_step, packed_stream
from slamlm.data.windows import PackedWindows, WindowSampler
from slamlm.device import bf16_is_fast, pick_cpu_threads
from slamlm.model import SpeechLM, named_shape
from slamlm.train.optim import build_optimizer
threads = {threads}
picked = pick_cpu_threads() if threads == 0 else threads
torch.set_num_threads(picked)
torch.manual_seed(0)
model = SpeechLM(named_shape("slam-135m", vocab_size=504, n_layers=6)).train()
model.set_attn_impl("sdpa")
opt = build_optimizer(model, 1e-3, 0.0, (0.9, 0.999), 1e-8)
data = PackedWindows(packed_stream(256 * 400, 120, 504), 256)
sampler = WindowSampler(data, micro_batch=8, accum=2, seed=0)
amp = torch.bfloat16 if bf16_is_fast(torch.device("cpu")) else None  # as precision: auto
step = make_our_step(model, model, opt, torch.device("cpu"), amp)
step(*sampler.next())
n, t0 = 0, time.perf_counter()
while time.perf_counter() - t0 < {seconds}:
    step(*sampler.next()); n += 1
print(json.dumps({{"tokens_per_s": n * 16 * 256 / (time.perf_counter() - t0), "threads": picked,
                  "bf16": amp is not None}}))
"""

LOAD = "import numpy as np\na = np.random.rand(400, 400)\nwhile True:\n    a = (a @ a) / 400.0\n"


def start_load(k: int) -> list[subprocess.Popen]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return [subprocess.Popen(["nice", "-n", "10", sys.executable, "-c", LOAD], env=env)
            for _ in range(k)]


def run_cell(threads: int, policy: str | None, seconds: float) -> dict:
    env = dict(os.environ)
    env.pop("OMP_NUM_THREADS", None)
    if policy:
        env["OMP_WAIT_POLICY"] = policy
    code = CHILD.format(bench=os.path.dirname(os.path.abspath(__file__)), threads=threads,
                        seconds=seconds)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--loads", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--seconds", type=float, default=15.0)
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    if args.quick:
        args.loads, args.seconds = [0, 2], 6.0
    ncpu = os.cpu_count() or 1
    cells = [(ncpu, None), (ncpu, "PASSIVE"), (1, None), (0, None)]
    rows = []
    for k in args.loads:
        procs = start_load(k)
        time.sleep(1.0 if k else 0.0)
        try:
            res = {c: run_cell(c[0], c[1], args.seconds) for c in cells}
        finally:
            for pr in procs:
                pr.kill()
                pr.wait()
        rows.append((k, res))
    bf16 = rows[0][1][cells[0]]["bf16"]
    print(f"demo model (SmolLM2 6 blocks, {'bf16 autocast' if bf16 else 'fp32 (bf16 is slow here)'}, "
          f"batch 16x256), {ncpu} cores; tokens/s, {args.seconds:.0f} s per cell")
    print(f"| competing jobs | {ncpu} threads | {ncpu} threads, OMP_WAIT_POLICY=PASSIVE "
          f"| 1 thread | auto (pick_cpu_threads) | auto chose |")
    print("|---|---|---|---|---|---|")
    for k, res in rows:
        v = [res[c]["tokens_per_s"] for c in cells]
        print(f"| {k} | {v[0]:.0f} | {v[1]:.0f} | {v[2]:.0f} | {v[3]:.0f} | "
              f"{res[cells[3]]['threads']} |")


if __name__ == "__main__":
    main()
