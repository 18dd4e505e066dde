"""Pretraining as an objective of :func:`slamlm.train.loop.fit` (``slam pretrain``).

Rows of a token shard (``slam pack``; plain units or interleaved speech-text), packed as
``data.packing`` says (``ffd``: whole documents, first-fit decreasing, the default;
``doc_per_row``; ``windows``: fixed windows that cut documents; see
:mod:`slamlm.data.documents`) -> summed next-token cross-entropy over in-document targets.
Validation = mean loss per target over whole validation documents (``ffd`` rows whatever the
training packing, so runs with different packings compare), and per modality on interleaved
shards. The data position (epoch, step) makes resume exact.

Example:
    >>> # last = run_pretrain(build_config(PretrainConfig, config_file="configs/tiny.yaml"))
"""

from __future__ import annotations

import contextlib
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from slamlm.data.documents import PackedDocuments, packed_rows
from slamlm.data.shards import TokenShard
from slamlm.data.windows import (
    IGNORE,
    DataPosition,
    MicroBatch,
    Rows,
    WindowSampler,
    eval_batches,
)
from slamlm.interleave.model import modality_totals
from slamlm.model import SpeechLM, load_checkpoint, named_shape
from slamlm.train.config import PretrainConfig, accumulation, micro_size
from slamlm.train.distributed import DistInfo, all_reduce_sum
from slamlm.train.loop import fit
from slamlm.train.objective import StepBatch
from slamlm.vocab import UnitVocab

log = logging.getLogger(__name__)

# target token kind (slamlm.interleave.spans.token_modality) -> validation metric name
VAL_KINDS = {"unit": "val_loss_speech", "text": "val_loss_text", "marker": "val_loss_markers"}


class PretrainObjective:
    """Next-token prediction on packed rows (see the module docstring)."""

    name = "train"

    def __init__(self, cfg: PretrainConfig):
        self.cfg = cfg
        self.sampler: WindowSampler | None = None
        self.val_data: Rows | None = None
        self.info: DistInfo | None = None

    def build(self, info: DistInfo, resume: Path | None) -> tuple[nn.Module, dict[str, Any]]:
        cfg, t = self.cfg, self.cfg.train
        self.info = info
        packing = cfg.data.packing
        train_shard = TokenShard.open(cfg.data.tokens, "train")
        self.val_data = PackedDocuments(TokenShard.open(cfg.data.tokens, "val"),
                                        cfg.data.context, "ffd", seed=0)
        self.micro = micro_size(t, info.world)
        rows = packed_rows(train_shard, cfg.data.context, packing, seed=t.seed)
        self.sampler = WindowSampler(rows, self.micro, accumulation(t, info.world), seed=t.seed,
                                     rank=info.rank, world=info.world)
        pad = f", {rows.padding_fraction():.1%} padding" if isinstance(rows, PackedDocuments) else ""
        log.info("%d rows of %d tokens per epoch (%s packing%s)", len(rows), cfg.data.context,
                 packing, pad)
        return _build_model(cfg, train_shard, resume, info)

    def max_steps(self, configured: int) -> int:
        return configured

    def next_batch(self) -> StepBatch:
        micros, n_valid = self.sampler.next()
        return StepBatch(micros, n_valid, self.sampler.global_batch * self.cfg.data.context)

    def loss(self, model: nn.Module, micro: MicroBatch) -> tuple[torch.Tensor, dict[str, Any]]:
        return _loss(model, micro, self.info.device), {}

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        return evaluate(model, self.val_data, self.micro, self.cfg.train.eval_windows, self.info)

    def data_state(self) -> dict[str, Any]:
        return self.sampler.position.to_dict()

    def load_data_state(self, state: dict[str, Any]) -> None:
        if state:
            self.sampler.position = DataPosition(**state)

    def checkpoint_meta(self, meta: dict[str, Any], step: int, tokens: int) -> dict[str, Any]:
        return {**meta, "train": {"step": step, "tokens": tokens}}


def run_pretrain(cfg: PretrainConfig) -> Path:
    """Library entry point of ``slam pretrain``: the last checkpoint folder."""
    return fit(cfg, PretrainObjective(cfg))


def _loss(wrapped: nn.Module, mb: MicroBatch, device: torch.device) -> torch.Tensor:
    """Summed next-token cross-entropy of one micro-batch (the loop scales it).

    A native SpeechLM computes the loss inside its forward (``targets=``), so a compiled model
    has forward + loss in one graph. Inputs are made contiguous: ``PackedWindows.batch`` gives
    row-strided views (T+1), and a compiled graph guards on strides, so any other producer
    (document rows, padded eval rows) would recompile.
    """
    x, y, d = _on_device(mb, device)  # (B, T); y: IGNORE masked
    if _loss_in_forward(wrapped):
        return wrapped(x, doc_ids=d, targets=y)
    logits = wrapped(x, doc_ids=d)  # (B, T, V)
    return F.cross_entropy(logits.float().flatten(0, 1), y.flatten(), ignore_index=IGNORE,
                           reduction="sum")


def _on_device(mb: MicroBatch, device: torch.device) -> tuple[torch.Tensor, ...]:
    """``(input_ids, targets, doc_ids)`` as contiguous device tensors."""
    return tuple(torch.from_numpy(np.ascontiguousarray(a)).to(device, non_blocking=True)
                 for a in (mb.input_ids, mb.targets, mb.doc_ids))


def _loss_in_forward(wrapped: nn.Module) -> bool:
    """Whether the model under compile/DDP wrappers takes ``targets=`` (the native SpeechLM)."""
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
def evaluate(wrapped: nn.Module, data: Rows, micro_batch: int, eval_windows: int,
             info: DistInfo, amp: torch.dtype | None = None) -> dict[str, float]:
    """Mean loss per in-document target over (the first ``eval_windows``) validation rows.

    Returns ``{"val_loss": ...}``; on interleaved shards (``<split>_modality.npy``) also
    ``val_loss_speech`` / ``val_loss_text`` / ``val_loss_markers`` (by target token kind).
    Runs under the caller's autocast (the loop's), or ``amp`` when given.
    """
    kinds = VAL_KINDS if _is_interleaved(data.shard) else {}
    was_training = wrapped.training
    wrapped.eval()
    tot = torch.zeros(2 + 2 * len(kinds), dtype=torch.float64, device=info.device)
    dev = info.device
    ctx = torch.autocast(dev.type, dtype=amp) if amp is not None else contextlib.nullcontext()
    batches = (_full_rows(mb, micro_batch) for mb in
               eval_batches(data, micro_batch, info.rank, info.world, eval_windows or None))
    with ctx:
        if kinds:
            sums = modality_totals(wrapped, batches, data.shard.vocab, dev)
            vals = [v for k in ("all", *kinds) for v in sums.get(k, (0.0, 0))]
            tot += torch.tensor(vals, dtype=torch.float64, device=dev)
        for mb in ([] if kinds else batches):
            tot[0] += _loss(wrapped, mb, dev).double()
            tot[1] += float((mb.targets != IGNORE).sum())
    wrapped.train(was_training)
    tot = all_reduce_sum(tot, info)
    out = {"val_loss": float(tot[0] / tot[1]) if tot[1] > 0 else math.nan}
    for j, name in enumerate(kinds.values()):
        if tot[3 + 2 * j] > 0:
            out[name] = float(tot[2 + 2 * j] / tot[3 + 2 * j])
    return out


def _is_interleaved(shard: TokenShard) -> bool:
    entry = shard.index["splits"][shard.split]
    return (shard.folder / entry.get("modality", f"{shard.split}_modality.npy")).is_file()


def _build_model(cfg: PretrainConfig, shard: TokenShard, resume: Path | None, info: DistInfo
                 ) -> tuple[nn.Module, dict[str, Any]]:
    """The model to train (from a checkpoint, a `slam init` folder or a random named shape)."""
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
    _check_layout(shard.vocab, meta.get("vocab"), cfg.data.tokens, src)
    impl = cfg.model.attn_impl if cfg.model.attn_impl != "auto" else (
        "flex" if info.device.type == "cuda" else "sdpa")
    if hasattr(model, "set_attn_impl"):
        model.set_attn_impl(impl)
    meta = {k: v for k, v in meta.items() if k != "model"}
    meta.setdefault("vocab", shard.vocab.to_dict())
    return model.train(), meta


def _check_layout(tokens_vocab: UnitVocab, model_vocab: dict[str, Any] | None, tokens: Any,
                  src: Path | None) -> None:
    """Refuse tokens whose ids mean other things to the model (sizes alone can agree while
    every unit is shifted: slamkit's layout puts unit u at u + 2, ours at u + 3)."""
    if not model_vocab:
        return
    mv = UnitVocab.from_dict(model_vocab)
    mine = (tokens_vocab.n_units, tokens_vocab.unit_offset, tokens_vocab.bos_id,
            tokens_vocab.eos_id, tokens_vocab.n_text)
    theirs = (mv.n_units, mv.unit_offset, mv.bos_id, mv.eos_id, mv.n_text)
    if mine != theirs:
        hint = (" (a slamkit checkpoint: convert it first with `slam init <that folder>`)"
                if mv.unit_offset != tokens_vocab.unit_offset else
                f" (pack with --n-units {mv.n_units})")
        raise ValueError(
            f"{tokens}: token layout (n_units, unit offset, bos, eos, n_text) = {mine} differs "
            f"from the model's {theirs} in {src}{hint}")
