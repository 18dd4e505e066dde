"""``slam dpo``: preference-align a SpeechLM checkpoint on (prompt, chosen, rejected) triplets.

Reads top to bottom: load triplets (units via the checkpoint's extractor) -> held-out split by
id -> reference log-probs once (cached) -> policy loop (packed forward -> DPO loss -> backward
-> clip -> AdamW -> cosine on progress) with metrics, held-out margin and step checkpoints.
Re-running the same command resumes from the newest ``ckpt/step_XXXXXXXX``.

Example:
    >>> # cfg = build_config(DPOConfig, base={"checkpoint": "run/ckpt/step_00017625",
    >>> #                    "data": "triplets.jsonl", "out": "run/dpo", "budget": "30m"})
    >>> # final = run_dpo(cfg)   # run/dpo/ckpt/step_XXXXXXXX (load with load_checkpoint)
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from slamlm.align.data import PreferencePair, load_triplets, split_heldout
from slamlm.align.loss import dpo_loss
from slamlm.align.packing import sequence_logps
from slamlm.align.reference import checkpoint_hash, compute_logps, pack_pairs, reference_logps
from slamlm.io import FailureLog, JsonlAppender, atomic_write_json
from slamlm.train import checkpoint as ckpt
from slamlm.train.config import parse_duration
from slamlm.train.distributed import DistInfo, pick_device
from slamlm.train.optim import build_optimizer, param_groups, set_lr, step_unless_nonfinite
from slamlm.train.schedule import lr_at
from slamlm.train.schedule import progress as schedule_progress

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DPOConfig:
    """``slam dpo`` settings (defaults: the Slam recipe's DPO, beta 0.1, lr 5e-5)."""

    checkpoint: str = ""  # policy init (and reference unless ``reference`` is set)
    data: str = ""  # triplets JSONL (audio paths relative to it, or unit lists)
    out: str = ""
    reference: str = ""  # frozen reference checkpoint (default: ``checkpoint``)
    kmeans: str = ""  # k-means file for audio triplets if the identity's path moved
    beta: float = 0.1
    sft_weight: float = 0.0  # weight of the chosen-NLL term (0 = pure DPO)
    lr: float = 5e-5
    min_lr: float = 0.0
    warmup: float = 0.05  # share of progress
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    batch_pairs: int = 16
    # packed row length; 0 = one sequence per row (padded, plain causal attention);
    # -1 = auto: 0 on CPU (measured faster there, bench/dpo_throughput.py), 1024 on CUDA
    row_tokens: int = -1
    epochs: float = 1.0  # sets max_steps when it is 0
    max_steps: int = 0
    budget: str = ""  # wall-clock budget, e.g. 30m (progress = max(steps, time))
    heldout_fraction: float = 0.05
    eval_every: int = 50
    log_every: int = 10
    save_every: int = 500
    max_auto_bleu: float | None = None  # drop pairs whose chosen repeats more than this
    dedup: bool = True  # remove consecutive duplicate units of audio triplets
    ref_max_tokens: int = 8192
    seed: int = 0
    device: str = "auto"
    amp: bool = True  # bf16 autocast on CUDA
    threads: int = 0  # torch CPU threads (0: leave as is)
    resume: str = "auto"  # auto (newest complete ckpt/step_*), none, or a step folder
    keep_last: int = 3  # step checkpoints kept
    strict: bool = False


def _encoder(meta: dict[str, Any], cfg: DPOConfig, device: torch.device):
    """``encode(paths) -> units`` from the checkpoint's unit extractor (built on first use)."""
    cache: dict[str, Any] = {}

    def encode(paths: list[Path]) -> list[np.ndarray]:
        if "ex" not in cache:
            from slamlm.units.extractor import UnitExtractor

            if not meta.get("units"):
                raise ValueError(f"{cfg.checkpoint}: config.json has no 'units' identity; "
                                 "give triplets as unit lists instead")
            cache["ex"] = UnitExtractor.from_identity(meta["units"], device=device,
                                                      kmeans_path=cfg.kmeans or None)
        units = cache["ex"].encode_paths(paths)
        if cfg.dedup:
            from slamlm.units.extractor import dedup

            units = [dedup(u)[0] for u in units]
        return units

    return encode


def load_pairs(cfg: DPOConfig, meta: dict[str, Any], out: Path, device: torch.device
               ) -> list[PreferencePair]:
    """Tokenised triplets (cached in ``out/pairs.npz`` keyed by the input file and settings)."""
    import hashlib

    from slamlm.vocab import UnitVocab

    vocab = UnitVocab.from_dict(meta.get("vocab") or {})
    key = hashlib.sha256(Path(cfg.data).read_bytes() + json.dumps(
        [meta.get("units"), meta.get("vocab"), cfg.dedup, cfg.max_auto_bleu, cfg.kmeans],
        sort_keys=True).encode()).hexdigest()[:16]
    cache = out / "pairs.npz"
    if cache.is_file():
        z = np.load(cache, allow_pickle=False)
        if str(z["key"]) == key:
            return [PreferencePair(str(i), p, c, r) for i, p, c, r in
                    zip(z["ids"], *(np.split(z[k], z[k + "_cut"]) for k in
                                    ("prompt", "chosen", "rejected")))]
    fails = FailureLog(out / "failures.jsonl", stage="dpo", strict=cfg.strict)
    pairs, summary = load_triplets(cfg.data, vocab, encode=_encoder(meta, cfg, device),
                                   failures=fails, max_auto_bleu=cfg.max_auto_bleu)
    atomic_write_json(out / "data_summary.json", dataclasses.asdict(summary))
    log.info("%d pairs from %d records (%d failed, %d dropped as repetitive)", summary.n_pairs,
             summary.n_records, summary.n_failed, summary.n_repetitive)
    if not pairs:
        raise ValueError(f"{cfg.data}: no usable triplets (see {out / 'failures.jsonl'})")
    arrays = {k: [getattr(p, k) for p in pairs] for k in ("prompt", "chosen", "rejected")}
    tmp = out / ".pairs.tmp.npz"
    np.savez(tmp, key=np.array(key), ids=np.array([p.id for p in pairs]),
             **{k: np.concatenate(v) for k, v in arrays.items()},
             **{k + "_cut": np.cumsum([len(a) for a in v])[:-1] for k, v in arrays.items()})
    tmp.replace(cache)
    return pairs


def batch_indices(step: int, n: int, batch: int, seed: int) -> np.ndarray:
    """Pair indices of ``step``: a fresh seeded permutation each epoch, so resume is exact."""
    out, perms = [], {}
    for g in range(step * batch, (step + 1) * batch):
        epoch, pos = divmod(g, n)
        if epoch not in perms:
            perms[epoch] = np.random.default_rng([seed, epoch]).permutation(n)
        out.append(perms[epoch][pos])
    return np.array(out)


def _autocast(device: torch.device, amp: bool):
    import contextlib

    if amp and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def heldout_metrics(model: torch.nn.Module, held: list[PreferencePair], ref: np.ndarray,
                    cfg: DPOConfig, device: torch.device) -> dict[str, float]:
    """Policy vs reference on held-out pairs: reward accuracy / margin and log-probs."""
    with _autocast(device, cfg.amp):
        lp = compute_logps(model, held, cfg.ref_max_tokens, device, cfg.row_tokens)
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float64))  # noqa: E731
    _, m = dpo_loss(t(lp[:, 0]), t(lp[:, 1]), t(ref[:, 0]), t(ref[:, 1]), beta=cfg.beta)
    keep = ("loss", "reward_accuracy", "reward_margin", "logp_chosen", "logp_rejected")
    return {f"heldout_{k}": m[k] for k in keep}


def train_step(model: torch.nn.Module, opt: torch.optim.Optimizer, pairs: list[PreferencePair],
               ref: np.ndarray, cfg: DPOConfig, device: torch.device) -> dict[str, float]:
    """One optimizer step on a batch of pairs (one packed forward); returns its metrics."""
    batch = pack_pairs(pairs, cfg.row_tokens).to(device)
    with _autocast(device, cfg.amp):
        lp = sequence_logps(model, batch)  # (2N,) chosen/rejected interleaved
    ref_t = torch.from_numpy(ref).to(device)
    lengths = torch.tensor([len(p.chosen) for p in pairs], device=device)
    loss, m = dpo_loss(lp[0::2], lp[1::2], ref_t[:, 0], ref_t[:, 1], beta=cfg.beta,
                       sft_weight=cfg.sft_weight, chosen_lengths=lengths)
    loss.backward()
    gn = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
    if device.type == "cuda":
        skipped = step_unless_nonfinite(opt, gn)  # fused kernel skips, no host sync
    else:
        skipped = not bool(torch.isfinite(gn))
        if not skipped:
            opt.step()
        opt.zero_grad(set_to_none=True)
    m["grad_norm"] = float(gn)
    m["skipped"] = int(skipped)
    m["tokens"] = batch.n_tokens
    return m


def _prepare(cfg: DPOConfig) -> dict[str, Any]:
    """Out folder, config, data, split and reference log-probs (cached)."""
    from slamlm.config import dump_config
    from slamlm.model.checkpoint import load_checkpoint, read_meta

    for name in ("checkpoint", "data", "out"):
        if not getattr(cfg, name):
            raise ValueError(f"slam dpo: {name} is required")
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    dump_config(cfg, out / "config.yaml")
    device = pick_device(cfg.device or "auto")
    meta = read_meta(cfg.checkpoint)
    pairs = load_pairs(cfg, meta, out, device)
    train, held = split_heldout(pairs, cfg.heldout_fraction, seed=cfg.seed)
    ref_dir = Path(cfg.reference or cfg.checkpoint)
    ref_model, _ = load_checkpoint(ref_dir, device=device)
    ref_hash, ref = checkpoint_hash(ref_dir), {}
    for name, part in (("train", train), ("heldout", held)):
        with _autocast(device, cfg.amp):  # held-out packed as the held-out eval packs it
            ref[name] = reference_logps(ref_model, part, out / "reference" / name, ref_hash,
                                        cfg.ref_max_tokens, device, cfg.row_tokens
                                        ) if part else np.zeros((0, 2))
    del ref_model
    log.info("%d train / %d held-out pairs; reference log-probs ready", len(train), len(held))
    return {"out": out, "device": device, "meta": meta, "train": train, "held": held,
            "ref_train": ref["train"], "ref_held": ref["heldout"]}


def _policy(cfg: DPOConfig, device: torch.device, ckpt_root: Path):
    """Policy + AdamW + state, from the newest step folder when resuming."""
    from slamlm.model.checkpoint import load_checkpoint

    last = ckpt.resume_folder(cfg.resume, ckpt_root)
    model, _ = load_checkpoint(last or cfg.checkpoint, device=device, dtype=torch.float32)
    model.train()
    if device.type == "cuda":
        opt = build_optimizer(model, lr=cfg.lr, weight_decay=cfg.weight_decay,
                              betas=(0.9, 0.999), eps=1e-8)
    else:  # fused AdamW measured ~9x slower than foreach on CPU
        opt = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr,
                                betas=(0.9, 0.999), eps=1e-8, foreach=True)
    state = {"step": 0, "pairs_seen": 0, "elapsed_s": 0.0}
    if last is not None:
        ckpt.load_optimizer(opt, model, last)
        saved = ckpt.read_state(last)
        state.update({k: saved[k] for k in state if k in saved})
        log.info("resuming from %s (step %d)", last, state["step"])
    return model, opt, state, last


def run_dpo(cfg: DPOConfig) -> Path:
    """Train with DPO; returns the final ``ckpt/step_XXXXXXXX`` folder (a full checkpoint)."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if cfg.row_tokens < 0:
        gpu = pick_device(cfg.device or "auto").type == "cuda"
        cfg = dataclasses.replace(cfg, row_tokens=1024 if gpu else 0)
    torch.manual_seed(cfg.seed)
    env = _prepare(cfg)
    out, device, train, held = env["out"], env["device"], env["train"], env["held"]
    ckpt_root = out / "ckpt"
    model, opt, state, last_saved = _policy(cfg, device, ckpt_root)
    max_steps = cfg.max_steps or max(1, math.ceil(cfg.epochs * len(train) / cfg.batch_pairs))
    budget = parse_duration(cfg.budget)
    info = DistInfo(rank=0, world=1, local_rank=0, device=device)
    meta = {k: v for k, v in env["meta"].items() if k != "model"}
    meta["dpo"] = {"base": str(cfg.checkpoint), "beta": cfg.beta, "data": str(cfg.data)}

    def progress() -> float:
        return schedule_progress(state["step"], max_steps, state["elapsed_s"], budget)

    def save() -> Path:
        meta["dpo"]["step"] = state["step"]
        return ckpt.save_train_checkpoint(ckpt_root, state["step"], model, opt, dict(state), cfg,
                                          meta, info, keep_last=cfg.keep_last)

    metrics = JsonlAppender(out / "metrics.jsonl")
    try:
        if state["step"] == 0 and held:
            metrics.write({"step": 0, **heldout_metrics(model, held, env["ref_held"], cfg,
                                                        device)})
        while progress() < 1.0:
            t0 = time.perf_counter()
            lr = lr_at(progress(), cfg.lr, cfg.min_lr, cfg.warmup)
            set_lr(opt, lr)
            idx = batch_indices(state["step"], len(train), cfg.batch_pairs, cfg.seed)
            m = train_step(model, opt, [train[i] for i in idx], env["ref_train"][idx], cfg,
                           device)
            dt = time.perf_counter() - t0
            state["step"] += 1
            state["pairs_seen"] += len(idx)
            state["elapsed_s"] += dt
            step = state["step"]
            done = progress() >= 1.0
            if step % cfg.log_every == 0 or done or step == 1:
                rec = {"step": step, "lr": lr, "pairs_seen": state["pairs_seen"],
                       "pairs_per_s": len(idx) / dt, "elapsed_s": state["elapsed_s"], **m}
                metrics.write(rec)
                log.info("step %d loss %.4f acc %.3f margin %.4f lr %.2e", step, m["loss"],
                         m["reward_accuracy"], m["reward_margin"], lr)
            if held and (step % cfg.eval_every == 0 or done):  # compute_logps sets eval mode
                metrics.write({"step": step, **heldout_metrics(model, held, env["ref_held"],
                                                               cfg, device)})
            if step % cfg.save_every == 0 or done:
                last_saved = save()
    finally:
        metrics.close()
    if last_saved is None:  # nothing left to do and nothing saved before (max_steps 0)
        last_saved = save()
    (out / "final.txt").write_text(f"{last_saved.name}\n")
    log.info("DPO finished at step %d: %s", state["step"], last_saved)
    return last_saved
