"""The GPU suite: one command, six time-boxed parts, one markdown table and one JSON file.

Parts, in order, each in its own subprocess with a time limit (a slow or crashing part records
its error and the suite goes on):

  1 pytest    ``pytest -m gpu -x -q``
  2 train     training throughput, Slam 358M shape, context 1024, packed documents:
              (a) HF Qwen2 slamkit-style, (b) HF + torch.compile, (c) ours; tokens/s,
              TFLOP/s (6N + causal attention), % of peak, peak memory, (c)/(a), (c)/(b)
  3 quality   (a) and (c) trained for the same wall-clock time from the same init on the
              same batches; validation loss of both
  4 units     unit extraction, random HuBERT-base 25 Hz, FLAC decoding included, vs the
              peer's way (fp32, batch 8, all hidden states, k-means on the CPU)
  5 eval      pairs/s of ``slamlm.eval.likelihood`` at 358M, projected time for 63k files
  6 generate  new tokens/s of ``slamlm.generate`` vs ``transformers.generate``, same weights

``OUT/suite.json`` and ``OUT/suite.md`` are rewritten after every part, so a kill still leaves
the parts done so far; ``OUT/suite.log`` holds every part's output. Exit code 0 when every
part is ok (or skipped), 1 otherwise.

    python bench/gpu_suite.py --out /tmp/gpu                 # one H100/H200, <= 8 minutes
    python bench/gpu_suite.py --dry-run --out /tmp/dry       # same code, CPU, tiny, < 2 min
    python bench/gpu_suite.py --parts train,quality --out /tmp/gpu
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class PartSpec:
    name: str
    title: str
    target: str  # "module:function" under bench/
    gpu_s: float  # time limit on a GPU
    dry_s: float  # time limit in a dry run (a safety net: the parts take far less)


PARTS = [  # GPU limits sum to 475 s: under 8 minutes with the suite's own overhead
    PartSpec("pytest", "pytest -m gpu", "suite.checks:part_pytest", 50, 60),
    PartSpec("train", "training throughput", "suite.train:part_train", 160, 60),
    PartSpec("quality", "fixed-time quality", "suite.train:part_quality", 160, 60),
    PartSpec("units", "unit extraction", "suite.units:part_units", 30, 60),
    PartSpec("eval", "eval scoring", "suite.infer:part_eval", 40, 60),
    PartSpec("generate", "generation", "suite.infer:part_generate", 35, 60),
]
BY_NAME = {s.name: s for s in PARTS}


class Interrupted(Exception):
    """SIGTERM/SIGINT reached the suite: stop the running part, keep what was measured."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--out", required=True, help="folder for suite.md, suite.json, suite.log")
    p.add_argument("--dry-run", action="store_true", help="CPU, tiny shapes, seconds per part")
    p.add_argument("--parts", default=",".join(BY_NAME), help="comma-separated subset, in order")
    p.add_argument("--budget", type=float, default=None,
                   help="seconds for the whole suite (default: the sum of the parts' limits)")
    p.add_argument("--quality-seconds", type=float, default=None,
                   help="training time of each model in part 3 (default 60 on GPU, 3 dry)")
    p.add_argument("--part", help=argparse.SUPPRESS)  # internal: run one part (child process)
    p.add_argument("--result", help=argparse.SUPPRESS)
    p.add_argument("--seconds", type=float, help=argparse.SUPPRESS)
    return p.parse_args(argv)


# ---- child: one part --------------------------------------------------------------------


def run_child(args: argparse.Namespace) -> int:
    """Run one part in this process; its result JSON is written as rows come in."""
    import importlib
    import logging
    import traceback

    import torch
    from suite.common import Part

    logging.basicConfig(level=logging.WARNING)
    if args.dry_run:
        torch.set_num_threads(min(2, os.cpu_count() or 1))
    p = Part(args.part, args.dry_run, args.seconds, Path(args.result), Path(args.out),
             options={"quality_seconds": args.quality_seconds})
    p.save("running")
    try:
        module, fn = BY_NAME[args.part].target.split(":")
        getattr(importlib.import_module(module), fn)(p)
    except Exception as e:  # noqa: BLE001 - recorded, the suite goes on
        traceback.print_exc()
        p.save("failed", error=f"{type(e).__name__}: {e}"[:1500])
        return 1
    p.save(p.status)
    return 0


# ---- parent: the suite ------------------------------------------------------------------


def _child_setup() -> None:
    """In the child before exec: own process group; die with the suite (Linux)."""
    os.setpgrp()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _kill(proc: subprocess.Popen) -> None:
    """SIGTERM the part's process group, SIGKILL what is left after 3 s."""
    for sig, wait in ((signal.SIGTERM, 3), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=wait)
            return
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


def run_part(spec: PartSpec, limit: float, args: argparse.Namespace, scratch: Path,
             log_path: Path) -> dict[str, Any]:
    """Run ``spec`` in a subprocess for at most ``limit`` seconds; its result dict."""
    result, work = scratch / f"{spec.name}.json", scratch / spec.name
    work.mkdir()
    cmd = [sys.executable, str(Path(__file__).resolve()), "--part", spec.name, "--out", str(work),
           "--result", str(result), "--seconds", f"{limit:.1f}", "--quality-seconds",
           str(args.quality_seconds or 0)] + (["--dry-run"] if args.dry_run else [])
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "src"),
                                                       os.environ.get("PYTHONPATH")]))}
    t0, status = time.monotonic(), None
    with open(log_path, "a") as log:
        log.write(f"\n===== part {spec.name}: {spec.title} (limit {limit:.0f} s) =====\n")
        log.flush()
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                                preexec_fn=_child_setup)
        try:
            rc = proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            rc, status = None, "timeout"
        except (Interrupted, KeyboardInterrupt):
            rc, status = None, "interrupted"
        finally:
            if proc.poll() is None:
                _kill(proc)
    res = json.loads(result.read_text()) if result.is_file() else {"rows": [], "notes": []}
    res.update(part=spec.name, title=spec.title, seconds=round(time.monotonic() - t0, 1),
               limit_s=round(limit))
    if status:
        res.update(status=status, error=f"{status} after {res['seconds']:.0f} s; the rows "
                                        "measured before are kept")
    elif rc != 0 or res.get("status") in (None, "running"):
        res["status"] = "failed"
        res["error"] = res.get("error") or f"exit code {rc} before a result: see suite.log"
    return res


def part_limits(chosen: list[PartSpec], dry: bool, budget: float, elapsed: float,
                i: int) -> float:
    """Part ``i``'s limit: its own, plus the budget's slack so far (time earlier parts left
    unused), never eating into the limits of the parts after it."""
    cap = [s.dry_s if dry else s.gpu_s for s in chosen]
    remaining = budget - elapsed
    return max(remaining - sum(cap[i + 1:]), min(cap[i], remaining))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.part:
        return run_child(args)
    unknown = [n for n in args.parts.split(",") if n not in BY_NAME]
    if unknown:
        raise SystemExit(f"--parts: unknown {', '.join(unknown)}; the parts are "
                         f"{', '.join(BY_NAME)}")
    chosen = [BY_NAME[n] for n in args.parts.split(",")]
    budget = args.budget or sum(s.dry_s if args.dry_run else s.gpu_s for s in chosen)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "suite.log").write_text("")
    suite: dict[str, Any] = {"started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                             "dry_run": args.dry_run, "budget_s": budget, "parts": {}}
    scratch = Path(tempfile.mkdtemp(prefix="gpu_suite_"))
    t0 = time.monotonic()

    def stop(signum, frame):
        raise Interrupted(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, stop)
    try:
        for i, spec in enumerate(chosen):
            limit = part_limits(chosen, args.dry_run, budget, time.monotonic() - t0, i)
            if limit < 5:
                res = {"part": spec.name, "title": spec.title, "status": "skipped", "rows": [],
                       "notes": [], "error": "the suite's time budget was spent"}
            else:
                res = run_part(spec, limit, args, scratch, out / "suite.log")
            suite["parts"][spec.name] = res
            _write(out, suite, chosen, time.monotonic() - t0)
            print(f"{spec.name:>9}: {res['status']:<8} {res.get('seconds', 0):6.1f} s"
                  + (f"  {res['error']}" if res.get("error") else ""), flush=True)
            if res["status"] == "interrupted":
                break
    except (Interrupted, KeyboardInterrupt):
        pass
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        _write(out, suite, chosen, time.monotonic() - t0)
    print((out / "suite.md").read_text())
    ok = all(suite["parts"].get(s.name, {}).get("status") in ("ok", "skipped") for s in chosen)
    return 0 if ok else 1


def _write(out: Path, suite: dict[str, Any], chosen: list[PartSpec], elapsed: float) -> None:
    """suite.json and suite.md, each written to a temporary name and renamed."""
    from suite.report import render_markdown

    suite["wall_s"] = round(elapsed, 1)
    for name, text in (("suite.json", json.dumps(suite, indent=1, default=str)),
                       ("suite.md", render_markdown(suite, [(s.name, s.title) for s in chosen]))):
        tmp = out / f".{name}.tmp"
        tmp.write_text(text + "\n")
        os.replace(tmp, out / name)


if __name__ == "__main__":
    raise SystemExit(main())
