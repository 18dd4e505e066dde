"""Parts 2 and 3: training throughput of HF vs ours, and a fixed-time quality check.

Both reuse ``bench/train_throughput.py`` (the HF baselines, our exact ``fit()`` step, the timed
windows) and run at the Slam 358M shape (vocab 504, context 1024) on packed random-walk
documents (log-normal lengths around 300 tokens); a dry run uses the ``tiny`` shape on CPU.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
import train_throughput as tt

from slamlm.data.windows import (
    IGNORE,
    DataPosition,
    MicroBatch,
    PackedWindows,
    WindowSampler,
    eval_batches,
)
from slamlm.model import SpeechLM, named_shape
from slamlm.schedule import lr_at, progress
from slamlm.train.optim import set_lr
from suite.common import (
    Part,
    device_facts,
    free_memory,
    peak_memory_gib,
    reset_peak_memory,
    sync,
    walk_shard,
)

MEAN_DOC = 300  # tokens per packed document (log-normal around it)
VOCAB = 504  # model rows: 503 tokens of a 500-unit vocabulary, padded to an even 504


def _settings(p: Part) -> argparse.Namespace:
    """The knobs ``train_throughput.run_variant`` reads, for the GPU or a dry run."""
    if p.dry:
        return argparse.Namespace(shape="tiny", context=128, batch=8, micro_a=4, micro_b=4,
                                  micro_c=4, micro_bs=[8, 4], warmup=1, windows=2, steps=1,
                                  compile=False)
    return argparse.Namespace(shape="slam-358m", context=1024, batch=64, micro_a=8, micro_b=32,
                              micro_c=16, micro_bs=[32, 16], warmup=3, windows=3, steps=2,
                              compile=True)


def _labels(p: Part, a: argparse.Namespace) -> dict[str, str]:
    amp = "fp32 weights + bf16 autocast" if p.gpu else "fp32"
    comp = "compile" if a.compile else "no compile (dry run)"
    return {"a": f"(a) HF Qwen2 eager SDPA, {amp}, AdamW",
            "b": f"(b) HF + {comp}, {'bf16' if p.gpu else 'fp32'} weights, fused AdamW",
            "c": f"(c) ours: doc-mask ({'flex' if p.gpu else 'SDPA bool mask'}), {comp}, "
                 f"fused AdamW, {amp}"}


def _throughput(r: dict[str, Any], ftok: float, peak: float | None) -> dict[str, float]:
    tflops = r["tok_s"] * ftok / 1e12
    out = {"tok_s": r["tok_s"], "tflops": tflops, "mem_gib": r["mem"]}
    if peak:
        out["pct_peak"] = 100 * tflops / peak
    return out


def part_train(p: Part) -> None:
    """(a), (c), then (b) at each micro-batch of ``micro_bs`` while the budget allows."""
    a = _settings(p)
    dev = p.device
    peak = device_facts(dev)["peak_tflops"]
    shape = named_shape(a.shape, vocab_size=VOCAB, max_seq_len=a.context)
    need = (a.warmup + a.windows * a.steps + 2) * a.batch * (a.context + 1)
    shard = walk_shard(need, MEAN_DOC, seed=0)
    ftok = tt.flops_tok(shape, a.context)
    p.notes.append(f"{a.shape}, context {a.context}, {a.batch} sequences/step, "
                   f"{ftok / 1e9:.3f} GFLOP/token (6N + causal attention), median of "
                   f"{a.windows} windows x {a.steps} steps after {a.warmup} warm-up steps")
    labels, rates, took = _labels(p, a), {}, {}
    for name, micro in [("a", a.micro_a), ("c", a.micro_c)] + [("b", m) for m in a.micro_bs]:
        label = f"{labels[name]}, micro {micro} x {max(1, a.batch // micro)}"
        if name == "b" and "b" in took and p.left() < took["b"] + 10:  # the first (b) always runs
            p.add(label, status="skipped", reason=f"{p.left():.0f} s left in the part")
            continue
        t0 = time.perf_counter()
        try:
            r = tt.run_variant(name, argparse.Namespace(**{**vars(a), f"micro_{name}": micro}),
                               shape, shard, dev)
        except torch.OutOfMemoryError:
            torch._dynamo.reset()
            free_memory(dev)
            p.add(label, status="oom")
            continue
        torch._dynamo.reset()  # drop the compiled graphs (and the weights they hold)
        free_memory(dev)
        took[name] = time.perf_counter() - t0
        rates[name] = max(rates.get(name, 0.0), r["tok_s"])
        p.add(label, _throughput(r, ftok, peak), loss=r["loss"], dynamo=r["dynamo"],
              seconds=round(took[name], 1))
    if "c" in rates:
        p.add("ratios (c)/(a), (c)/(b best)",
              {"c_over_a": rates["c"] / rates["a"] if "a" in rates else None,
               "c_over_b": rates["c"] / rates["b"] if "b" in rates else None})


# ---- part 3: fixed-time quality ---------------------------------------------------------


def _quality_settings(p: Part) -> dict[str, Any]:
    if p.dry:
        return dict(shape="tiny", context=128, batch=8, micro_a=4, micro_c=4, lr=3e-3,
                    val_windows=8, seconds=float(p.options.get("quality_seconds") or 3))
    return dict(shape="slam-358m", context=1024, batch=32, micro_a=8, micro_c=16, lr=1e-3,
                val_windows=64, seconds=float(p.options.get("quality_seconds") or 60))


@torch.no_grad()
def val_loss(nll_sum: Callable[[MicroBatch], torch.Tensor], data: PackedWindows,
             micro: int) -> float:
    """Mean NLL per in-document target over every window of ``data``."""
    tot, n = 0.0, 0
    for mb in eval_batches(data, micro):
        tot += float(nll_sum(mb))
        n += int((mb.targets != IGNORE).sum())
    return tot / max(n, 1)


def _hf_nll(model, dev: torch.device, amp: bool) -> Callable[[MicroBatch], torch.Tensor]:
    """Summed NLL of our targets under an HF model (its attention crosses documents)."""
    from slamlm.train.pretrain import _on_device

    def nll(mb: MicroBatch) -> torch.Tensor:
        x, y, _ = _on_device(mb, dev)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
            logits = model(input_ids=x).logits
        return F.cross_entropy(logits.float().flatten(0, 1), y.flatten(), ignore_index=IGNORE,
                               reduction="sum")
    return nll


def _our_nll(model: SpeechLM, dev: torch.device, amp: torch.dtype | None):
    """Summed NLL with the eager model and the SDPA doc mask (no compile for evaluation)."""
    from slamlm.train.pretrain import _loss

    def nll(mb: MicroBatch) -> torch.Tensor:
        with torch.autocast(dev.type, dtype=amp or torch.float32, enabled=amp is not None):
            return _loss(model, mb, dev)
    return nll


def train_for(step, sampler: WindowSampler, opt, seconds: float, lr: float,
              dev: torch.device) -> dict[str, float]:
    """Optimizer steps until ``seconds`` of wall clock have passed (at least one); the lr
    follows the project's time-based schedule (5% warm-up, cosine to lr/20). The next batch is
    built on the host while the device runs the current step; the clock is read after a sync."""
    sync(dev)
    t0, steps, batch = time.perf_counter(), 0, sampler.next()
    elapsed = 0.0
    while steps == 0 or elapsed < seconds:
        set_lr(opt, lr_at(progress(steps + 1, 0, elapsed, seconds), lr, lr / 20, 0.05))
        loss = step(*batch)
        batch = sampler.next()
        sync(dev)
        steps += 1
        elapsed = time.perf_counter() - t0
    tokens = steps * sampler.global_batch * sampler.data.context
    return {"steps": steps, "tokens": tokens, "tok_s": tokens / elapsed, "wall": elapsed,
            "train_loss": float(loss)}


def _warm_up(step, sampler: WindowSampler, opt, n: int = 2) -> None:
    """``n`` full steps at lr 0 (compiles, allocates; weights unchanged), then a fresh
    optimizer state and the sampler back at its first batch."""
    set_lr(opt, 0.0)
    for _ in range(n):
        step(*sampler.next())
    opt.state.clear()
    sampler.position = DataPosition()


def _build(name: str, ours: SpeechLM, hf_dir: str, s: dict, p: Part):
    """(model, step, nll, micro) for variant ``a`` (HF from ``hf_dir``) or ``c`` (ours)."""
    from slamlm.train.distributed import DistInfo, wrap_model
    from slamlm.train.optim import build_optimizer

    dev = p.device
    if name == "a":
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(hf_dir, attn_implementation="sdpa",
                                                     dtype=torch.float32).to(dev)
        opt = torch.optim.AdamW(model.parameters(), lr=s["lr"], weight_decay=0.0)
        return model, opt, tt.make_hf_step(model, opt, dev, amp=p.gpu), _hf_nll(model, dev, p.gpu)
    model = ours.to(dev)
    amp = torch.bfloat16 if p.gpu else None
    wrapped = wrap_model(model, DistInfo(0, 1, 0, dev), "ddp", compile_model=p.gpu)
    opt = build_optimizer(model, s["lr"], 0.0, (0.9, 0.999), 1e-8)
    return model, opt, tt.make_our_step(model, wrapped, opt, dev, amp), _our_nll(model, dev, amp)


def _set_attn(model, impl: str) -> None:
    if hasattr(model, "set_attn_impl"):
        model.set_attn_impl(impl)


def part_quality(p: Part) -> None:
    """(c) then (a), from the same init, on the same batches in the same order, each for the
    same wall-clock time: ``quality_seconds``, less when (c)'s compile left too little."""
    from slamlm.model import export_hf

    s, dev = _quality_settings(p), p.device
    rate = 1e5 if p.dry else 2.5e5  # tokens/s above (c)'s: it sees each window about once
    train = walk_shard(int(rate * s["seconds"]), MEAN_DOC, seed=1)
    val = PackedWindows(walk_shard(s["val_windows"] * s["context"] + 1, MEAN_DOC, seed=2),
                        s["context"], pad_last=True)
    torch.manual_seed(0)
    ours = SpeechLM(named_shape(s["shape"], vocab_size=VOCAB, max_seq_len=s["context"]))
    with tempfile.TemporaryDirectory(dir=p.work) as hf_dir:
        export_hf(ours, hf_dir, train.vocab)  # the same init for both
        for name in ("c", "a"):
            _quality_variant(p, name, ours, hf_dir, s, train, val)
            free_memory(dev)


def _fixed_seconds(p: Part, s: dict) -> float:
    """Decided once, after (c)'s warm-up: what is left must hold both runs and (a)'s setup."""
    if "fixed_s" not in s:
        reserve = 5.0 if p.dry else 30.0  # (a): load, warm-up, two validations; margins
        s["fixed_s"] = min(s["seconds"], max(1.0, (p.left() - reserve) / 2))
        p.notes.append(f"{s['shape']}, context {s['context']}, {s['batch']} sequences/step, lr "
                       f"{s['lr']:g}, {s['fixed_s']:.0f} s each after 2 warm-up steps at lr 0; "
                       f"val: {s['val_windows']} windows of unseen random-walk documents")
    return s["fixed_s"]


def _quality_variant(p: Part, name: str, ours: SpeechLM, hf_dir: str, s: dict,
                     train, val: PackedWindows) -> None:
    dev = p.device
    model, opt, step, nll = _build(name, ours, hf_dir, s, p)
    micro = s["micro_a"] if name == "a" else s["micro_c"]
    _set_attn(model, "sdpa")
    init = val_loss(nll, val, micro)
    _set_attn(model, "flex" if p.gpu else "sdpa")
    sampler = WindowSampler(PackedWindows(train, s["context"]), micro, s["batch"] // micro, seed=0)
    _warm_up(step, sampler, opt)
    reset_peak_memory(dev)
    r = train_for(step, sampler, opt, _fixed_seconds(p, s), s["lr"], dev)
    mem = peak_memory_gib(dev)
    _set_attn(model, "sdpa")
    final = val_loss(nll, val, micro)
    label = {"a": "(a) HF eager SDPA (slamkit-style)",
             "c": f"(c) ours (doc-mask{', compile' if p.gpu else ''})"}[name]
    p.add(f"{label}, micro {micro} x {s['batch'] // micro}",
          {"val_loss": final, "tok_s": r["tok_s"], "mem_gib": mem},
          val_loss_init=round(init, 4), steps=r["steps"], tokens=r["tokens"],
          train_loss=round(r["train_loss"], 4), wall_s=round(r["wall"], 2))
    model.to("cpu")
