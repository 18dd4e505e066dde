"""Part 1: ``pytest -m gpu -x -q`` in a subprocess, inside the part's time limit.

Status ``ok`` when tests passed, ``skipped`` when every selected test was skipped (no CUDA
device), otherwise the part fails with pytest's last lines. A dry run selects the GPU tests
of one file only (collecting the whole suite costs more than the dry run's budget).
"""

from __future__ import annotations

import re
import subprocess
import sys
import time

from suite.common import REPO, Part

DRY_RUN_FILE = "tests/eval/test_eval_likelihood.py"


def pytest_counts(output: str) -> dict[str, int]:
    """``{"passed": 6, "skipped": 1, ...}`` from pytest's summary line."""
    counts: dict[str, int] = {}
    for n, what in re.findall(r"(\d+) (passed|failed|skipped|deselected|errors?|xfailed|xpassed)",
                              output):
        counts[what.rstrip("s") if what.startswith("error") else what] = int(n)
    return counts


def part_pytest(p: Part) -> None:
    cmd = [sys.executable, "-m", "pytest", "-m", "gpu", "-x", "-q", "-p", "no:cacheprovider"]
    cmd += [DRY_RUN_FILE] if p.dry else []
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True,
                       timeout=max(5.0, p.left() - 5))
    wall = time.perf_counter() - t0
    print(r.stdout[-6000:], r.stderr[-3000:], sep="\n", flush=True)  # into the suite's log
    counts = pytest_counts(r.stdout.strip().splitlines()[-1] if r.stdout.strip() else "")
    bad = counts.get("failed", 0) + counts.get("error", 0)
    if r.returncode not in (0, 5) or bad:
        tail = " | ".join(r.stdout.strip().splitlines()[-3:])
        raise RuntimeError(f"pytest exit code {r.returncode}: {tail}")
    if not counts.get("passed"):
        p.status = "skipped"
    summary = ", ".join(f"{n} {k}" for k, n in counts.items()) or "no tests collected"
    p.add(f"pytest -m gpu: {summary}", {"wall_s": wall}, **counts)
