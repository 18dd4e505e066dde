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
import hashlib
import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from slamlm.align.data import PreferencePair, load_triplets, split_heldout
from slamlm.align.loss import dpo_loss
from slamlm.align.packing import sequence_logps
from slamlm.align.reference import checkpoint_hash, compute_logps, pack_pairs, reference_logps
from slamlm.config import ConfigError, replace_nested
from slamlm.device import resolve_device
from slamlm.io import FailureLog, atomic_write_json, atomic_write_text
from slamlm.model.checkpoint import load_checkpoint, read_meta, resolve_checkpoint
from slamlm.train.config import (
    DistConfig,
    OptimConfig,
    ScheduleConfig,
    TrainConfig,
    micro_size,
)
from slamlm.train.distributed import DistInfo
from slamlm.train.loop import autocast_dtype, fit
from slamlm.train.objective import StepBatch
from slamlm.vocab import UnitVocab

log = logging.getLogger(__name__)


DPO_ALIASES = {"lr": "optim.lr", "min_lr": "optim.min_lr", "weight_decay": "optim.weight_decay",
               "grad_clip": "optim.clip", "batch_pairs": "train.batch_size",
               "seed": "train.seed", "max_steps": "schedule.max_steps",
               "budget": "schedule.budget", "warmup": "schedule.warmup",
               "warmup_steps": "schedule.warmup_steps", "eval_every": "schedule.eval_every",
               "log_every": "schedule.log_every", "save_every": "schedule.ckpt_every",
               "keep_last": "schedule.keep_last"}


@dataclass(frozen=True)
class DPOConfig:
    """``slam dpo`` settings; defaults are slamkit's DPO recipe (beta 0.1, lr 5e-5 flat after
    100 warm-up steps, clip 0.5, 8 pairs per step, pairs whose prompt + chosen repeat
    (Auto-BLEU >= 0.3) dropped). The loop sections ``train``/``optim``/``schedule``/``dist``
    are the ones pretraining has; old flat names (``lr``, ``grad_clip``, ``batch_pairs``,
    ``save_every``, ``max_steps``, ``budget``...) are aliases (:data:`DPO_ALIASES`)."""

    ALIASES: ClassVar[dict[str, str]] = DPO_ALIASES

    checkpoint: str = ""  # policy init (and reference unless ``reference`` is set)
    data: str = ""  # triplets JSONL (audio paths relative to it, or unit lists)
    out: str = ""
    reference: str = ""  # frozen reference checkpoint (default: ``checkpoint``)
    kmeans: str = ""  # k-means file for audio triplets if the identity's path moved
    beta: float = 0.1
    sft_weight: float = 0.0  # weight of the chosen-NLL term (0 = pure DPO)
    # packed row length; 0 = one sequence per row (padded, plain causal attention);
    # -1 = auto: 0 on CPU (measured faster there, bench/dpo_throughput.py), 1024 on CUDA
    row_tokens: int = -1
    epochs: float = 1.0  # sets schedule.max_steps when it is 0
    heldout_fraction: float = 0.05
    max_auto_bleu: float | None = 0.3  # drop pairs whose prompt + chosen repeat this much
    dedup: bool = True  # remove consecutive duplicate units of audio triplets
    ref_max_tokens: int = 8192
    device: str = "auto"
    amp: bool = True  # false: train.precision=fp32 (kept for old recipes)
    threads: int = 0  # torch CPU threads (0: train.threads, auto by default)
    resume: str = "auto"  # auto (newest complete ckpt/step_*), none, or a step folder
    strict: bool = False
    train: TrainConfig = field(default_factory=lambda: TrainConfig(batch_size=8, micro_batch=0))
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=5e-5, min_lr=5e-5))
    schedule: ScheduleConfig = field(default_factory=lambda: ScheduleConfig(
        warmup=0.0, warmup_steps=100, decay="constant", log_every=10, eval_every=50,
        ckpt_every=500))
    dist: DistConfig = field(default_factory=DistConfig)

    def __post_init__(self) -> None:
        if self.beta <= 0 or self.epochs <= 0 or not 0 <= self.heldout_fraction < 1:
            raise ConfigError(f"dpo: beta and epochs must be > 0 and heldout_fraction in "
                              f"[0, 1) (got {self.beta}, {self.epochs}, {self.heldout_fraction})")
        if self.ref_max_tokens < 1 or self.row_tokens < -1:
            raise ConfigError("dpo: ref_max_tokens must be >= 1 and row_tokens >= -1")


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


def heldout_metrics(model: torch.nn.Module, held: list[PreferencePair], ref: np.ndarray,
                    cfg: DPOConfig, device: torch.device) -> dict[str, float]:
    """Policy vs reference on held-out pairs: reward accuracy / margin and log-probs."""
    lp = compute_logps(model, held, cfg.ref_max_tokens, device, cfg.row_tokens)
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float64))  # noqa: E731
    _, m = dpo_loss(t(lp[:, 0]), t(lp[:, 1]), t(ref[:, 0]), t(ref[:, 1]), beta=cfg.beta)
    keep = ("loss", "reward_accuracy", "reward_margin", "logp_chosen", "logp_rejected")
    return {f"heldout_{k}": m[k] for k in keep}


def pair_tokens(pairs: list[PreferencePair]) -> int:
    """Tokens of both sequences of every pair (what a step reads)."""
    return sum(2 * len(p.prompt) + len(p.chosen) + len(p.rejected) for p in pairs)


class DPOObjective:
    """DPO as an objective of :func:`slamlm.train.loop.fit` (see the module docstring)."""

    name = "dpo"

    def __init__(self, cfg: DPOConfig):
        self.cfg = cfg
        self.batch_step = 0  # global batches drawn (the data position)

    def build(self, info: DistInfo, resume: Path | None) -> tuple[torch.nn.Module, dict[str, Any]]:
        """Pairs, held-out split and reference log-probs (rank 0 first; the others then read
        its caches), then the policy (from ``resume`` when given)."""
        cfg, out = self.cfg, Path(self.cfg.out)
        self.info = info
        out.mkdir(parents=True, exist_ok=True)
        meta = read_meta(cfg.checkpoint)
        for turn in ((0,) if info.world == 1 else (0, 1)):
            if (turn == 0) == info.is_main:
                self._prepare(meta, out, info)
            if info.world > 1:
                torch.distributed.barrier()
        model, _ = load_checkpoint(resume or cfg.checkpoint, device=info.device,
                                   dtype=torch.float32)
        meta = {k: v for k, v in meta.items() if k != "model"}
        meta["dpo"] = {"base": str(cfg.checkpoint), "beta": cfg.beta, "data": str(cfg.data)}
        return model.train(), meta

    def _prepare(self, meta: dict[str, Any], out: Path, info: DistInfo) -> None:
        cfg, dev = self.cfg, info.device
        t0 = time.perf_counter()
        pairs = load_pairs(cfg, meta, out, dev)
        self.train, self.held = split_heldout(pairs, cfg.heldout_fraction, seed=cfg.train.seed)
        if not self.train:
            raise ValueError(f"{cfg.data}: no training pairs left after the held-out split")
        ref_dir = resolve_checkpoint(cfg.reference or cfg.checkpoint)  # a hub id too
        ref_model, _ = load_checkpoint(ref_dir, device=dev)
        ref_hash, ref = checkpoint_hash(ref_dir), {}
        amp = autocast_dtype(cfg.train.precision, dev)
        with torch.autocast(dev.type, dtype=amp or torch.float32, enabled=amp is not None):
            for name, part in (("train", self.train), ("heldout", self.held)):
                ref[name] = reference_logps(ref_model, part, out / "reference" / name, ref_hash,
                                            cfg.ref_max_tokens, dev, cfg.row_tokens
                                            ) if part else np.zeros((0, 2))
        del ref_model
        self.ref_train, self.ref_held = ref["train"], ref["heldout"]
        log.info("%d train / %d held-out pairs; reference log-probs ready in %.1fs (not "
                 "counted in the budget)", len(self.train), len(self.held),
                 time.perf_counter() - t0)

    def max_steps(self, configured: int) -> int:
        b = self.cfg.train.batch_size
        return configured or max(1, math.ceil(self.cfg.epochs * len(self.train) / b))

    def next_batch(self) -> StepBatch:
        t, info = self.cfg.train, self.info
        idx = batch_indices(self.batch_step, len(self.train), t.batch_size, t.seed)
        self.batch_step += 1
        m = micro_size(t, info.world)
        groups = [idx[j:j + m] for j in range(0, len(idx), m)]
        mine = [groups[j] for j in range(info.rank, len(groups), info.world)]
        return StepBatch(mine, len(idx), pair_tokens([self.train[i] for i in idx]))

    def loss(self, model: torch.nn.Module, micro: np.ndarray) -> tuple[torch.Tensor, dict]:
        """Summed DPO loss of these pairs (one packed forward) and summed pair metrics."""
        cfg, dev = self.cfg, self.info.device
        pairs = [self.train[i] for i in micro]
        lp = sequence_logps(model, pack_pairs(pairs, cfg.row_tokens).to(dev))  # (2N,)
        ref = torch.from_numpy(self.ref_train[micro]).to(dev)
        lengths = torch.tensor([len(p.chosen) for p in pairs], device=dev)
        loss, m = dpo_loss(lp[0::2], lp[1::2], ref[:, 0], ref[:, 1], beta=cfg.beta,
                           sft_weight=cfg.sft_weight, chosen_lengths=lengths)
        n = len(pairs)
        return loss * n, {k: v * n for k, v in m.items() if k != "loss"}

    def evaluate(self, model: torch.nn.Module) -> dict[str, float]:
        if not self.held:
            return {}
        return heldout_metrics(model, self.held, self.ref_held, self.cfg, self.info.device)

    def data_state(self) -> dict[str, Any]:
        return {"batch": self.batch_step}

    def load_data_state(self, state: dict[str, Any]) -> None:
        self.batch_step = int(state.get("batch", 0))

    def checkpoint_meta(self, meta: dict[str, Any], step: int, tokens: int) -> dict[str, Any]:
        return {**meta, "dpo": {**meta["dpo"], "step": step, "tokens": tokens}}


def run_dpo(cfg: DPOConfig) -> Path:
    """Train with DPO; returns the final ``ckpt/step_XXXXXXXX`` folder (a full checkpoint)."""
    for name in ("checkpoint", "data", "out"):
        if not getattr(cfg, name):
            raise ValueError(f"slam dpo: {name} is required")
    if cfg.threads:  # the older top-level knob: train.threads is what the loop reads
        cfg = replace_nested(cfg, **{"train.threads": cfg.threads})
    if not cfg.amp:
        cfg = replace_nested(cfg, **{"train.precision": "fp32"})
    if cfg.row_tokens < 0:
        gpu = resolve_device(cfg.device or "auto").type == "cuda"
        cfg = dataclasses.replace(cfg, row_tokens=1024 if gpu else 0)
    torch.manual_seed(cfg.train.seed)
    last = fit(cfg, DPOObjective(cfg))
    if int(os.environ.get("RANK", "0")) == 0:
        atomic_write_text(Path(cfg.out) / "final.txt", f"{last.name}\n")
    log.info("DPO finished: %s", last)
    return last
