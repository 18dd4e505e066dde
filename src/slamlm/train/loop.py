"""``fit(cfg, objective)``: the one training loop of every trainer, top to bottom.

micro-batches from the objective -> forward + loss (bf16 autocast where enabled) -> summed
loss / items of the whole global batch -> backward (gradient all-reduce only on the last
micro-batch) -> clip -> AdamW (a NaN/inf step is skipped) -> lr from progress =
max(step / max_steps, train_time / budget). The budget clock counts training steps only;
validation and checkpoint time are measured and logged apart (``eval_s``, ``ckpt_s``) and
``wall`` is the total. Checkpoints hold model, optimizer, RNG, data position and both clocks,
so a resumed run continues bit for bit, and ``metrics.jsonl`` rows past the resumed step
(written by a killed run) are dropped. ``cfg`` is any stage config with ``out``, ``resume``,
``device``, ``train`` (:class:`TrainConfig`), ``optim``, ``schedule`` and ``dist`` sections.

Example:
    >>> # from slamlm.train.pretrain import PretrainObjective
    >>> # fit(cfg, PretrainObjective(cfg))   # -> run/ckpt/step_XXXXXXXX
"""

from __future__ import annotations

import logging
import math
import resource
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from slamlm.config import dump_config, to_dict
from slamlm.device import bf16_is_fast, set_cpu_threads
from slamlm.io import JsonlAppender, read_jsonl, write_jsonl
from slamlm.schedule import lr_at, progress
from slamlm.train import checkpoint as ckpt
from slamlm.train.config import parse_duration
from slamlm.train.distributed import (
    DistInfo,
    all_reduce_sum,
    cleanup,
    grad_sync,
    init_distributed,
    wrap_model,
)
from slamlm.train.objective import Objective
from slamlm.train.optim import build_optimizer, set_lr, step_unless_nonfinite
from slamlm.train.tracking import MetricSinks

log = logging.getLogger(__name__)

PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "A6000": 155.0, "A5000": 111.0,
               "L40": 181.0, "4090": 165.0}


@dataclass
class TrainState:
    """Everything besides weights/optimizer that an exact resume needs (``state.json``).

    ``elapsed`` is training time (what the budget counts); ``wall`` adds validation
    (``eval_s``) and checkpoint (``ckpt_s``) time.
    """

    step: int = 0
    tokens: int = 0
    elapsed: float = 0.0
    wall: float = 0.0
    eval_s: float = 0.0
    ckpt_s: float = 0.0
    skipped: int = 0
    data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_saved(cls, saved: dict[str, Any]) -> TrainState:
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in saved.items() if k in known})


@dataclass
class Run:
    """What the loop works with, built once by :func:`setup`."""

    model: nn.Module  # the plain model (saving, clipping)
    wrapped: nn.Module  # DDP/FSDP/compiled view used for forward
    opt: torch.optim.Optimizer
    state: TrainState
    meta: dict[str, Any]
    resume: Path | None
    sharded: bool
    amp: torch.dtype | None
    max_steps: int
    budget: float | None
    clip: float
    metrics: Metrics | None


def fit(cfg: Any, objective: Objective) -> Path:
    """Train ``objective`` (or resume it) and return the last checkpoint folder."""
    info = init_distributed(cfg.device)
    try:
        return _fit(cfg, objective, info)
    finally:
        cleanup(info)


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """bf16 autocast for ``bf16``, and for ``auto`` where bf16 matmuls are fast (a GPU, or a
    CPU with native bf16: ~2x training speed measured on the demo shape, bench/
    cpu_train_throughput.py); None (fp32) otherwise. Master weights stay fp32."""
    if precision == "bf16" or (precision == "auto" and bf16_is_fast(device)):
        return torch.bfloat16
    return None


def tune_threads(cfg: Any, info: DistInfo) -> float:
    """CPU runs: ``train.threads``, or the count that is fastest now (see set_cpu_threads;
    re-setting a fixed count is a no-op). Returns the seconds it took (probing counts as eval)."""
    t0 = time.perf_counter()
    if info.device.type == "cpu":
        set_cpu_threads(cfg.train.threads, info.world)
    return time.perf_counter() - t0


def setup(cfg: Any, obj: Objective, info: DistInfo) -> Run:
    """Resume point, model (from the objective), wrapping, optimizer, metrics file."""
    t, o, s = cfg.train, cfg.optim, cfg.schedule
    out = Path(cfg.out)
    tune_threads(cfg, info)
    use_compile = info.device.type == "cuda" if t.compile is None else t.compile
    amp = autocast_dtype(t.precision, info.device)
    resume = ckpt.resume_folder(cfg.resume, out / "ckpt")
    model, meta = obj.build(info, resume)
    saved = ckpt.read_state(resume) if resume else {}
    state = TrainState.from_saved(saved)
    sharded = info.world > 1 and cfg.dist.strategy == "fsdp"
    wrapped = wrap_model(model, info, cfg.dist.strategy, use_compile)
    opt = build_optimizer(model, o.lr, o.weight_decay, tuple(o.betas), o.eps)
    if resume:
        ckpt.load_optimizer(opt, model, resume, sharded)
        ckpt.set_rng_state(saved["rng"])
        obj.load_data_state(state.data)
        log.info("resumed from %s (step %d)", resume, state.step)
    if info.is_main:
        out.mkdir(parents=True, exist_ok=True)
        truncate_metrics(out / "metrics.jsonl", state.step)
        dump_config(cfg, out / "config.yaml")
    metrics = Metrics(out, t.log, to_dict(cfg)) if info.is_main else None
    log.info("%s: model %.1fM params, batch %d = %d x %d processes, %s%s", obj.name,
             n_params(model) / 1e6, t.batch_size, t.micro_batch, info.world,
             "bf16" if amp else "fp32", " + compile" if use_compile else "")
    return Run(model, wrapped, opt, state, meta, resume, sharded, amp,
               obj.max_steps(s.max_steps), parse_duration(s.budget), o.clip, metrics)


class Metrics:
    """``metrics.jsonl`` (always) plus the ``train.log`` sinks (TensorBoard, wandb)."""

    def __init__(self, out: Path, sinks: tuple[str, ...], config: dict[str, Any]):
        self.jsonl = JsonlAppender(out / "metrics.jsonl")
        self.sinks = MetricSinks(sinks, out, config)

    def write(self, rec: dict[str, Any]) -> None:
        self.jsonl.write(rec)
        self.sinks.write(rec)

    def close(self) -> None:
        self.jsonl.close()
        self.sinks.close()


class _Totals:
    """Loss/metric/norm sums over a log interval, on the device (read only when logging)."""

    def __init__(self, device: torch.device):
        self.device, self.sums, self.steps = device, {}, 0
        self.bad_run = torch.zeros((), device=device)  # NaN/inf steps in a row
        self.bad_total = torch.zeros((), device=device)

    def add(self, key: str, value: Any) -> None:
        self.sums[key] = self.sums.get(key, 0.0) + (value.detach() if torch.is_tensor(value)
                                                    else value)

    def means(self, info: DistInfo) -> dict[str, float]:
        keys = sorted(self.sums)
        vec = torch.stack([torch.as_tensor(self.sums[k], dtype=torch.float64,
                                           device=self.device) for k in keys])
        vec = all_reduce_sum(vec, info) / info.world / max(self.steps, 1)
        vals = dict(zip(keys, vec.tolist()))
        self.sums, self.steps = {}, 0
        return {k: round(v, 6) for k, v in vals.items()}


def _fit(cfg: Any, obj: Objective, info: DistInfo) -> Path:
    t, s = cfg.train, cfg.schedule
    r = setup(cfg, obj, info)
    state, metrics = r.state, r.metrics
    flops_tok = flops_per_token(r.model, getattr(getattr(cfg, "data", None), "context", 0))
    peak = peak_flops(t.peak_tflops, info)
    wall0 = time.perf_counter() - state.wall
    val_step = -1
    if s.eval_every and state.step == 0:  # the starting point of the validation curve
        val_step = _validate(obj, r, metrics, info)
    totals = _Totals(info.device)
    last_log = (state.step, state.elapsed, state.tokens)
    skipped0, last = state.skipped, r.resume
    bar = _progress_bar(info, state, r)
    while True:
        p = progress(state.step, r.max_steps, state.elapsed, r.budget)
        if p >= 1.0 or (s.stop_at_step and state.step >= s.stop_at_step):
            break
        t0 = time.perf_counter()
        lr = _lr(cfg, state.step + 1, progress(state.step + 1, r.max_steps, state.elapsed,
                                               r.budget), r.max_steps)
        set_lr(r.opt, lr)
        batch = obj.next_batch()
        _step(obj, r, batch, totals, info)
        state.step += 1
        state.tokens += batch.tokens
        state.data = obj.data_state()
        state.elapsed += time.perf_counter() - t0
        state.wall = time.perf_counter() - wall0
        _check_bad_steps(totals, state, s, r, last)
        if _due(state.step, s.log_every, r) or state.step == 1:
            rec = _log_record(state, totals.means(info), lr, last_log, flops_tok, peak, info)
            rec["skipped"] = skipped0 + int(totals.bad_total.item())
            _emit(rec, metrics)
            last_log = (state.step, state.elapsed, state.tokens)
            _bar_update(bar, state, r, rec)
        if s.eval_every and state.step % s.eval_every == 0 and state.step != r.max_steps:
            state.eval_s += tune_threads(cfg, info)  # the load may have changed: re-probe
            val_step = _validate(obj, r, metrics, info)
        if s.ckpt_every and state.step % s.ckpt_every == 0:
            state.skipped = skipped0 + int(totals.bad_total.item())
            last = _save(cfg, obj, r, info, wall0)
    if bar is not None:
        bar.close()
    state.skipped = skipped0 + int(totals.bad_total.item())
    if val_step != state.step:
        val_step = _validate(obj, r, metrics, info, final=True)
    if last is None or last.name != ckpt.ckpt_name(state.step):
        last = _save(cfg, obj, r, info, wall0)
    if metrics:
        metrics.close()
    return last


def _due(step: int, every: int, r: Run) -> bool:
    return step % every == 0 or step == r.max_steps


def _lr(cfg: Any, step: int, p: float, max_steps: int) -> float:
    o, s = cfg.optim, cfg.schedule
    return lr_at(p, o.lr, o.min_lr, s.warmup, step=step, warmup_steps=s.warmup_steps,
                 max_steps=max_steps, decay=s.decay)


def _step(obj: Objective, r: Run, batch: Any, totals: _Totals, info: DistInfo) -> None:
    """Forward/backward over this rank's micro-batches, clip, and the (skippable) update."""
    scale = info.world / max(batch.n_items, 1)
    dev = info.device
    for i, mb in enumerate(batch.micros):
        with grad_sync(r.wrapped, r.model, sync=i == len(batch.micros) - 1):
            with torch.autocast(dev.type, dtype=r.amp or torch.float32, enabled=r.amp is not None):
                loss, parts = obj.loss(r.wrapped, mb)
            scaled = loss * scale
            scaled.backward()
        totals.add("loss", scaled)
        for k, v in parts.items():
            totals.add(k, v * scale)
    norm = torch.nn.utils.clip_grad_norm_(r.model.parameters(), r.clip if r.clip > 0 else math.inf)
    norm = norm.full_tensor() if hasattr(norm, "full_tensor") else norm
    found_inf = step_unless_nonfinite(r.opt, norm)
    totals.bad_run = (totals.bad_run + 1) * found_inf
    totals.bad_total += found_inf
    totals.add("grad_norm", torch.where(found_inf > 0, torch.zeros_like(norm), norm))
    totals.steps += 1


def _check_bad_steps(totals: _Totals, state: TrainState, s: Any, r: Run, last: Path | None
                     ) -> None:
    if state.step % min(s.log_every, s.max_bad_steps) and state.step != r.max_steps:
        return
    if totals.bad_run.item() >= s.max_bad_steps:
        raise RuntimeError(
            f"loss or gradient was NaN/inf for {int(totals.bad_run.item())} optimizer steps in "
            f"a row (to step {state.step}): lower optim.lr or check the data; the last good "
            f"checkpoint is {last}")


def _validate(obj: Objective, r: Run, metrics: Metrics | None, info: DistInfo,
              final: bool = False) -> int:
    """Run the objective's evaluation (its time goes to ``eval_s``, not the budget)."""
    t0 = time.perf_counter()
    dev = info.device
    with torch.autocast(dev.type, dtype=r.amp or torch.float32, enabled=r.amp is not None):
        vals = obj.evaluate(r.wrapped)
    r.state.eval_s += time.perf_counter() - t0
    rec = {"step": r.state.step, **vals}
    if final:
        rec["final"] = True
    if vals or final:
        _emit(rec, metrics)
    return r.state.step


def _save(cfg: Any, obj: Objective, r: Run, info: DistInfo, wall0: float) -> Path:
    t0 = time.perf_counter()
    state = r.state
    state.wall = time.perf_counter() - wall0
    folder = ckpt.save_train_checkpoint(
        Path(cfg.out) / "ckpt", state.step, r.model, r.opt, asdict(state), cfg,
        obj.checkpoint_meta(dict(r.meta), state.step, state.tokens), info, r.sharded,
        cfg.schedule.keep_last)
    state.ckpt_s += time.perf_counter() - t0
    return folder


def truncate_metrics(path: Path, step: int) -> None:
    """Drop rows past ``step`` (written by a killed run after its last checkpoint)."""
    if not path.is_file():
        return
    rows = list(read_jsonl(path, skip_bad=True))
    keep = [r for r in rows if r.get("step", 0) <= step]
    if len(keep) != len(rows):
        write_jsonl(path, keep)
        log.info("%s: dropped %d rows past step %d", path, len(rows) - len(keep), step)


def n_params(model: nn.Module) -> int:
    return model.num_params() if hasattr(model, "num_params") else sum(p.numel() for p in model.parameters())


def flops_per_token(model: nn.Module, context: int) -> float:
    f = getattr(model, "flops_per_token", None)
    return float(f(context)) if callable(f) and context else 6.0 * n_params(model)


def peak_flops(peak_tflops: float, info: DistInfo) -> float | None:
    if peak_tflops:
        return peak_tflops * 1e12
    if info.device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(info.device)
    return next((v * 1e12 for k, v in PEAK_TFLOPS.items() if k in name), None)


def _log_record(state: TrainState, means: dict[str, float], lr: float, last: tuple,
                flops_tok: float, peak: float | None, info: DistInfo) -> dict[str, Any]:
    step0, elapsed0, tokens0 = last
    dt = max(state.elapsed - elapsed0, 1e-9)
    tok_s = (state.tokens - tokens0) / dt
    if info.device.type == "cuda":
        mem = torch.cuda.max_memory_allocated(info.device) / 2**30
    else:
        mem = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    rec = {"step": state.step, "tokens": state.tokens, "loss": means.pop("loss"), "lr": lr,
           "grad_norm": means.pop("grad_norm"), **means, "tokens_per_s": round(tok_s, 1),
           "steps_per_s": round((state.step - step0) / dt, 4),
           "mfu": round(flops_tok * tok_s / info.world / peak, 4) if peak else None,
           "mem_gib": round(mem, 3), "elapsed": round(state.elapsed, 2),
           "wall": round(state.wall, 2), "eval_s": round(state.eval_s, 2),
           "ckpt_s": round(state.ckpt_s, 2)}
    return rec


def _progress_bar(info: DistInfo, state: TrainState, r: Run):
    """A tqdm bar over progress (steps or budget time) with an ETA; off when not a terminal."""
    if not info.is_main or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    bar = tqdm(total=1000, unit="‰", dynamic_ncols=True, leave=True,
               bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt}‰ [{elapsed}<{remaining}{postfix}]")
    bar.n = int(1000 * progress(state.step, r.max_steps, state.elapsed, r.budget))
    return bar


def _bar_update(bar, state: TrainState, r: Run, rec: dict[str, Any]) -> None:
    if bar is None:
        return
    bar.n = int(1000 * progress(state.step, r.max_steps, state.elapsed, r.budget))
    bar.set_postfix_str(f"step {state.step} loss {rec['loss']:.4f} "
                        f"{rec['tokens_per_s']:.0f} tok/s", refresh=False)
    bar.refresh()


def _emit(rec: dict[str, Any], metrics: Metrics | None) -> None:
    if metrics is None:
        return
    metrics.write(rec)
    log.info(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in rec.items()))
