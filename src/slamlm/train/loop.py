"""``fit()``: the pretraining loop, top to bottom.

micro-batches of packed windows -> forward (bf16 autocast on GPU, fp32 on CPU) -> summed
cross-entropy over in-document targets / valid targets of the whole global batch -> backward
(gradient all-reduce only on the last micro-batch) -> clip -> fused AdamW (skipped on the
device when the grad norm is NaN/inf) -> lr from progress = max(step/max_steps, time/budget).
The step has no host sync; losses, norms and bad-step counters are read at log intervals.

Example:
    >>> # fit(build_config(PretrainConfig, config_file="configs/tiny.yaml"))  # -> run/ckpt/step_*
"""

from __future__ import annotations

import logging
import math
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from slamlm.config import dump_config, to_dict
from slamlm.data.shards import TokenShard
from slamlm.data.windows import (
    IGNORE,
    DataPosition,
    MicroBatch,
    PackedWindows,
    WindowSampler,
    eval_batches,
)
from slamlm.io import JsonlAppender, read_jsonl, write_jsonl
from slamlm.train import checkpoint as ckpt
from slamlm.train.config import PretrainConfig, accumulation, parse_duration
from slamlm.train.distributed import (
    DistInfo,
    all_reduce_sum,
    cleanup,
    grad_sync,
    init_distributed,
    wrap_model,
)
from slamlm.train.optim import build_optimizer, set_lr, step_unless_nonfinite
from slamlm.train.schedule import lr_at, progress

log = logging.getLogger(__name__)

PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "A6000": 155.0, "A5000": 111.0,
               "L40": 181.0, "4090": 165.0}


@dataclass
class TrainState:
    """Everything besides weights/optimizer that an exact resume needs (state.json)."""

    step: int = 0
    tokens: int = 0
    elapsed: float = 0.0
    skipped: int = 0
    data: dict[str, int] = field(default_factory=lambda: {"epoch": 0, "step": 0})


def fit(cfg: PretrainConfig) -> Path:
    """Train (or resume) and return the last checkpoint folder."""
    info = init_distributed(cfg.device)
    try:
        return _fit(cfg, info)
    finally:
        cleanup(info)


@dataclass
class Run:
    """What the loop works with, built once by :func:`setup`."""

    model: nn.Module  # the plain model (saving, clipping)
    wrapped: nn.Module  # DDP/FSDP/compiled view used for forward
    opt: torch.optim.Optimizer
    sampler: WindowSampler
    val_data: PackedWindows
    state: TrainState
    meta: dict[str, Any]
    resume: Path | None
    sharded: bool
    amp: torch.dtype | None
    budget: float | None
    metrics: JsonlAppender | None


def setup(cfg: PretrainConfig, info: DistInfo) -> Run:
    """Data, model (fresh, `slam init` or resumed), wrapping, optimizer, sampler, metrics."""
    t, gpu = cfg.train, info.device.type == "cuda"
    use_compile = gpu if t.compile is None else t.compile
    amp = torch.bfloat16 if (t.precision == "bf16" or (t.precision == "auto" and gpu)) else None
    train_shard = TokenShard.open(cfg.data.tokens, "train")
    val_data = PackedWindows(TokenShard.open(cfg.data.tokens, "val"), cfg.data.context, pad_last=True)
    resume = ckpt.resume_folder(cfg.resume, Path(cfg.out) / "ckpt")
    model, meta = _build_model(cfg, train_shard, resume, info)
    saved = ckpt.read_state(resume) if resume else {}
    state = TrainState(**{k: v for k, v in saved.items() if k != "rng"})
    sharded = info.world > 1 and cfg.dist.strategy == "fsdp"
    wrapped = wrap_model(model, info, cfg.dist.strategy, use_compile)
    opt = build_optimizer(model, t.lr, t.weight_decay, tuple(t.betas), t.eps)
    if resume:
        ckpt.load_optimizer(opt, model, resume, sharded)
        ckpt.set_rng_state(saved["rng"])
        log.info("resumed from %s (step %d)", resume, state.step)
    accum = accumulation(t, info.world)
    sampler = WindowSampler(PackedWindows(train_shard, cfg.data.context), t.micro_batch, accum,
                            seed=t.seed, rank=info.rank, world=info.world,
                            position=DataPosition(**state.data))
    if info.is_main:
        _truncate_metrics(Path(cfg.out) / "metrics.jsonl", state.step)
    metrics = JsonlAppender(Path(cfg.out) / "metrics.jsonl") if info.is_main else None
    if info.is_main:
        dump_config(cfg, Path(cfg.out) / "config.yaml")
    log.info("model %.1fM params, %d windows/epoch, batch %d = %d x %d x %d, %s%s",
             _n_params(model) / 1e6, len(sampler.data), t.batch_size, t.micro_batch, accum,
             info.world, "bf16" if amp else "fp32", " + compile" if use_compile else "")
    return Run(model, wrapped, opt, sampler, val_data, state, meta, resume, sharded, amp,
               parse_duration(t.budget), metrics)


def _fit(cfg: PretrainConfig, info: DistInfo) -> Path:
    t = cfg.train
    r = setup(cfg, info)
    model, wrapped, opt, sampler, state, amp, budget, metrics = (
        r.model, r.wrapped, r.opt, r.sampler, r.state, r.amp, r.budget, r.metrics)
    tokens_per_step = t.batch_size * cfg.data.context
    flops_tok = _flops_per_token(model, cfg.data.context)
    peak = _peak_flops(t.peak_tflops, info)
    val: tuple[int, dict] = (-1, {})  # (step, losses) of the latest validation
    if t.eval_every and state.step == 0:  # the starting point of the validation curve
        val = (0, evaluate(wrapped, r.val_data, t, info, amp))
        _emit({"step": 0, **val[1]}, metrics)
    loss_acc = torch.zeros((), device=info.device)  # summed over the log interval
    norm_acc = torch.zeros((), device=info.device)
    bad_run = torch.zeros((), device=info.device)  # NaN/inf steps in a row
    bad_total = torch.zeros((), device=info.device)
    start, last_log, last_log_step = time.time() - state.elapsed, time.time(), state.step
    skipped0 = state.skipped
    last = r.resume
    while True:
        state.elapsed = time.time() - start
        p = progress(state.step, t.max_steps, state.elapsed, budget)
        if p >= 1.0 or (t.stop_at_step and state.step >= t.stop_at_step):
            break
        lr = lr_at(progress(state.step + 1, t.max_steps, state.elapsed, budget), t.lr, t.min_lr, t.warmup)
        set_lr(opt, lr)

        micros, n_valid = sampler.next()
        for i, mb in enumerate(micros):
            with grad_sync(wrapped, model, sync=i == len(micros) - 1):
                loss = _loss(wrapped, mb, info.device, amp, scale=info.world / max(n_valid, 1))
                loss.backward()
            loss_acc += loss.detach()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), t.clip)
        norm = norm.full_tensor() if hasattr(norm, "full_tensor") else norm
        found_inf = step_unless_nonfinite(opt, norm)
        bad_run = (bad_run + 1) * found_inf
        bad_total += found_inf
        norm_acc += torch.where(found_inf > 0, torch.zeros_like(norm), norm)
        state.step += 1
        state.tokens += tokens_per_step
        state.data = sampler.position.to_dict()

        if state.step % min(t.log_every, t.max_bad_steps) == 0 or state.step == t.max_steps:
            if bad_run.item() >= t.max_bad_steps:
                raise RuntimeError(
                    f"loss or gradient was NaN/inf for {int(bad_run.item())} optimizer steps in a "
                    f"row (to step {state.step}): lower train.lr or check the data; the last good "
                    f"checkpoint is {last}")
        if state.step % t.log_every == 0 or state.step == t.max_steps:
            n = state.step - last_log_step
            dt = time.time() - last_log
            rec = _log_record(state, all_reduce_sum(loss_acc, info) / info.world / n,
                              norm_acc / n, lr, n * tokens_per_step / dt, flops_tok, peak, info,
                              skipped=skipped0 + int(bad_total.item()))
            _emit(rec, metrics)
            loss_acc.zero_()
            norm_acc.zero_()
            last_log, last_log_step = time.time(), state.step
        if t.eval_every and state.step % t.eval_every == 0 and state.step != t.max_steps:
            val = (state.step, evaluate(wrapped, r.val_data, t, info, amp))
            _emit({"step": state.step, **val[1]}, metrics)
        if t.ckpt_every and state.step % t.ckpt_every == 0:
            state.skipped = skipped0 + int(bad_total.item())
            last = _save(cfg, state, model, opt, r.meta, info, r.sharded, start)

    state.skipped = skipped0 + int(bad_total.item())
    if val[0] != state.step:
        val = (state.step, evaluate(wrapped, r.val_data, t, info, amp))
    _emit({"step": state.step, **val[1], "final": True}, metrics)
    if last is None or last.name != ckpt.ckpt_name(state.step):
        last = _save(cfg, state, model, opt, r.meta, info, r.sharded, start)
    if metrics:
        metrics.close()
    return last


def _loss(wrapped: nn.Module, mb: MicroBatch, device: torch.device, amp: torch.dtype | None,
          scale: float) -> torch.Tensor:
    """Summed next-token cross-entropy of one micro-batch times ``scale``.

    A native SpeechLM computes the loss inside its forward (``targets=``), so a compiled model
    has forward + loss in one graph; ``scale`` (a Python float that changes every step) is
    applied outside it so it never becomes a guard/recompile. Same ops in eager mode.
    Inputs are made contiguous: ``PackedWindows.batch`` gives row-strided views (T+1), and a
    compiled graph guards on strides, so any other producer (padded eval rows) would recompile.
    """
    x, y, d = _on_device(mb, device)  # (B, T); y: IGNORE masked
    with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
        if _loss_in_forward(wrapped):
            return wrapped(x, doc_ids=d, targets=y) * scale
        logits = wrapped(x, doc_ids=d)  # (B, T, V)
    nll = F.cross_entropy(logits.float().flatten(0, 1), y.flatten(), ignore_index=IGNORE,
                          reduction="sum")
    return nll * scale


def _on_device(mb: MicroBatch, device: torch.device) -> tuple[torch.Tensor, ...]:
    """``(input_ids, targets, doc_ids)`` as contiguous device tensors."""
    return tuple(torch.from_numpy(np.ascontiguousarray(a)).to(device, non_blocking=True)
                 for a in (mb.input_ids, mb.targets, mb.doc_ids))


def _loss_in_forward(wrapped: nn.Module) -> bool:
    """Whether the model under compile/DDP wrappers takes ``targets=`` (the native SpeechLM)."""
    from slamlm.model import SpeechLM

    inner = getattr(wrapped, "_orig_mod", wrapped)
    return isinstance(getattr(inner, "module", inner), SpeechLM)


def _full_rows(mb: MicroBatch, rows: int) -> MicroBatch:
    """Pad a short (last) validation micro-batch to ``rows`` rows of ignored targets, so a
    compiled model sees one fixed shape and does not recompile for it."""
    pad = rows - mb.input_ids.shape[0]
    if pad <= 0:
        return mb
    x, y, d = ((a, np.full((pad, a.shape[1]), fill, dtype=a.dtype))
               for a, fill in ((mb.input_ids, 0), (mb.targets, IGNORE), (mb.doc_ids, 0)))
    return MicroBatch(*(np.concatenate(pair) for pair in (x, y, d)))


@torch.no_grad()
def evaluate(wrapped: nn.Module, data: PackedWindows, t: Any, info: DistInfo,
             amp: torch.dtype | None) -> dict[str, float]:
    """Mean loss per in-document target over (the first ``eval_windows``) validation windows.

    Returns ``{"val_loss": ...}``; on interleaved shards (``<split>_modality.npy``) also
    ``val_loss_speech`` / ``val_loss_text`` / ``val_loss_markers`` (by target token kind).
    """
    kinds = VAL_KINDS if _is_interleaved(data.shard) else {}
    wrapped.eval()
    tot = torch.zeros(2 + 2 * len(kinds), dtype=torch.float64, device=info.device)
    for mb in eval_batches(data, t.micro_batch, info.rank, info.world, t.eval_windows or None):
        mb = _full_rows(mb, t.micro_batch)
        if kinds:
            tot += _modality_sums(wrapped, mb, info.device, amp, data.shard.vocab)
            continue
        tot[0] += _loss(wrapped, mb, info.device, amp, scale=1.0).double()
        tot[1] += float((mb.targets != IGNORE).sum())
    wrapped.train()
    tot = all_reduce_sum(tot, info)
    out = {"val_loss": float(tot[0] / tot[1]) if tot[1] > 0 else math.nan}
    for j, name in enumerate(kinds.values()):
        if tot[3 + 2 * j] > 0:
            out[name] = float(tot[2 + 2 * j] / tot[3 + 2 * j])
    return out


VAL_KINDS = {"unit": "val_loss_speech", "text": "val_loss_text", "marker": "val_loss_markers"}


def _is_interleaved(shard: TokenShard) -> bool:
    entry = shard.index["splits"][shard.split]
    return (shard.folder / entry.get("modality", f"{shard.split}_modality.npy")).is_file()


def _modality_sums(wrapped: nn.Module, mb: MicroBatch, device: torch.device,
                   amp: torch.dtype | None, vocab: Any) -> torch.Tensor:
    """[nll sum, n] over all targets, then per :data:`VAL_KINDS` kind (validation only)."""
    from slamlm.model.interleaved import per_modality_loss

    x, y, d = _on_device(mb, device)
    with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
        part = per_modality_loss(wrapped(x, doc_ids=d), y, vocab, ignore_index=IGNORE)
    vals = [v for k in ("all", *VAL_KINDS) for v in (part.get(k, 0.0) * part.get(f"n_{k}", 0),
                                                      part.get(f"n_{k}", 0))]
    return torch.tensor(vals, dtype=torch.float64, device=device)


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop rows past ``step`` (written by a killed run after its last checkpoint)."""
    if not path.is_file():
        return
    rows = list(read_jsonl(path, skip_bad=True))
    keep = [r for r in rows if r.get("step", 0) <= step]
    if len(keep) != len(rows):
        write_jsonl(path, keep)
        log.info("%s: dropped %d rows past step %d", path, len(rows) - len(keep), step)


def _build_model(cfg: PretrainConfig, shard: TokenShard, resume: Path | None, info: DistInfo
                 ) -> tuple[nn.Module, dict[str, Any]]:
    """The model to train (from a checkpoint, a `slam init` folder or a random named shape)."""
    from slamlm.model import SpeechLM, load_checkpoint, named_shape

    src = resume or (Path(cfg.model.init) if cfg.model.init else None)
    if src is not None:
        model, meta = load_checkpoint(src, device=info.device, dtype=torch.float32)
    else:
        torch.manual_seed(cfg.train.seed)
        model = SpeechLM(named_shape(cfg.model.shape, vocab_size=shard.vocab.size)).to(info.device)
        meta = {"vocab": shard.vocab.to_dict(), "units": {},
                "init": {"kind": "random", "shape": cfg.model.shape, "seed": cfg.train.seed}}
    if shard.vocab.size > model.config.vocab_size:
        raise ValueError(
            f"{cfg.data.tokens}: tokens use a vocabulary of {shard.vocab.size} but the model has "
            f"{model.config.vocab_size} rows: pack with the model's n_units or re-run slam init")
    impl = cfg.model.attn_impl if cfg.model.attn_impl != "auto" else (
        "flex" if info.device.type == "cuda" else "sdpa")
    if hasattr(model, "set_attn_impl"):
        model.set_attn_impl(impl)
    meta = {k: v for k, v in meta.items() if k != "model"}
    meta.setdefault("vocab", shard.vocab.to_dict())
    return model.train(), meta


def _save(cfg, state, model, opt, meta, info, sharded, start) -> Path:
    state.elapsed = time.time() - start
    folder = ckpt.save_train_checkpoint(
        Path(cfg.out) / "ckpt", state.step, model, opt, to_dict(state), cfg,
        {**meta, "train": {"step": state.step, "tokens": state.tokens}}, info, sharded,
        cfg.train.keep_last)
    return folder


def _n_params(model: nn.Module) -> int:
    return model.num_params() if hasattr(model, "num_params") else sum(p.numel() for p in model.parameters())


def _flops_per_token(model: nn.Module, context: int) -> float:
    f = getattr(model, "flops_per_token", None)
    return float(f(context)) if callable(f) else 6.0 * _n_params(model)


def _peak_flops(peak_tflops: float, info: DistInfo) -> float | None:
    if peak_tflops:
        return peak_tflops * 1e12
    if info.device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(info.device)
    return next((v * 1e12 for k, v in PEAK_TFLOPS.items() if k in name), None)


def _log_record(state: TrainState, loss: torch.Tensor, norm: torch.Tensor, lr: float,
                tok_s: float, flops_tok: float, peak: float | None, info: DistInfo,
                skipped: int) -> dict[str, Any]:
    if info.device.type == "cuda":
        mem = torch.cuda.max_memory_allocated(info.device) / 2**30
    else:
        mem = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return {"step": state.step, "tokens": state.tokens, "loss": round(float(loss), 6),
            "lr": lr, "grad_norm": round(float(norm), 6), "tokens_per_s": round(tok_s, 1),
            "mfu": round(flops_tok * tok_s / info.world / peak, 4) if peak else None,
            "mem_gib": round(mem, 3), "elapsed": round(state.elapsed, 2), "skipped": skipped}


def _emit(rec: dict[str, Any], metrics: JsonlAppender | None) -> None:
    if metrics is None:
        return
    metrics.write(rec)
    log.info(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in rec.items()))


def run_pretrain(cfg: PretrainConfig) -> Path:
    """Library entry point of ``slam pretrain``."""
    return fit(cfg)
