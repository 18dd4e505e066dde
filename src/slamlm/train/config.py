"""Configs shared by every trainer (optimiser, schedule, loop) and ``slam pretrain``'s own.

Every trainer (pretraining, interleaved pretraining, DPO) is configured with the same three
sections, so a knob has one name everywhere: ``optim`` (:class:`OptimConfig`), ``schedule``
(:class:`ScheduleConfig`: steps, time budget, warm-up, logging/eval/checkpoint intervals) and
``train`` (:class:`TrainConfig`: batch, precision, compile, seed). Older flat names
(``train.lr``, ``train.budget``, DPO's ``grad_clip``/``save_every``...) are aliases
(:data:`PRETRAIN_ALIASES`), so existing recipes and ``--set`` flags keep working.

Example:
    >>> parse_duration("90s"), parse_duration("30m"), parse_duration("24h")
    (90.0, 1800.0, 86400.0)
    >>> OptimConfig().clip, ScheduleConfig().warmup_steps
    (0.5, 100)
    >>> # build_config(PretrainConfig, config_file="configs/slam.yaml", overrides=["optim.lr=5e-4"])
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal

from slamlm.config import ConfigError

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str | float | int | None) -> float | None:
    """``"90s"``/``"30m"``/``"24h"``/``"1.5h"``/``"2d"``, parts added up (``"4m30s"``,
    ``"1h 15m"``; a bare number is seconds) or a number of seconds -> seconds.

    Example:
        >>> parse_duration("4m30s"), parse_duration("1.5h"), parse_duration(90)
        (270.0, 5400.0, 90.0)
    """
    if text is None or text == "" or text == 0:
        return None
    if isinstance(text, (int, float)):
        if text < 0:
            raise ConfigError(f"schedule.budget: {text!r} is negative")
        return float(text)
    part = r"([0-9]*\.?[0-9]+)\s*([smhd]?)"
    spec = str(text).lower().strip()
    if not spec or not re.fullmatch(rf"(?:{part}\s*)+", spec):
        raise ConfigError(f"schedule.budget: {text!r} is not a duration like 90s, 30m, 4m30s, "
                          f"24h or 2d")
    parts = re.findall(part, spec)
    if len(parts) > 1 and any(not u for _, u in parts):
        raise ConfigError(f"schedule.budget: {text!r}: give each part a unit (s, m, h, d)")
    return sum(float(v) * _UNITS[u or "s"] for v, u in parts)


@dataclass(frozen=True)
class OptimConfig:
    """AdamW (fused on GPU, foreach on CPU) and gradient clipping; the Slam values by default."""

    lr: float = 1e-3  # peak learning rate
    min_lr: float = 5e-5  # where the cosine ends (ignored by schedule.decay=constant)
    weight_decay: float = 0.0  # on >= 2-D weights only
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    clip: float = 0.5  # gradient-norm clipping (0: off)

    def __post_init__(self) -> None:
        if not (self.lr > 0 and self.min_lr >= 0 and self.eps > 0 and self.clip >= 0):
            raise ConfigError(f"optim: lr must be > 0, min_lr/clip >= 0, eps > 0 (got {self})")
        if not all(0.0 <= b < 1.0 for b in self.betas):
            raise ConfigError(f"optim.betas: each must be in [0, 1), got {self.betas}")


@dataclass(frozen=True)
class ScheduleConfig:
    """When training ends and what happens on the way.

    Progress = max(step / max_steps, train_time / budget); the budget clock counts training
    steps only (validation and checkpoint time are logged as ``eval_s``/``ckpt_s`` and
    excluded, as in the paper). Warm-up lasts max(``warmup_steps``, ``warmup`` of progress).
    """

    max_steps: int = 0  # optimizer steps (0: no step limit; the budget ends training)
    budget: str | None = None  # training-time budget, e.g. 24h, 30m (None: steps only)
    warmup: float = 0.01  # warm-up share of progress ...
    warmup_steps: int = 100  # ... or at least this many steps
    decay: Literal["cosine", "constant"] = "cosine"  # after warm-up: cosine to min_lr, or flat
    stop_at_step: int = 0  # >0: checkpoint and stop here without ending the schedule
    log_every: int = 10  # steps between metrics.jsonl rows
    eval_every: int = 500  # steps between validations (0: only at the start and end)
    ckpt_every: int = 1000  # steps between checkpoints (0: only at the end)
    keep_last: int = 3  # step checkpoints kept (0: all)
    max_bad_steps: int = 20  # stop after this many NaN/inf steps in a row

    def __post_init__(self) -> None:
        for name in ("max_steps", "warmup_steps", "stop_at_step", "eval_every", "ckpt_every",
                     "keep_last"):
            if getattr(self, name) < 0:
                raise ConfigError(f"schedule.{name} must be >= 0, got {getattr(self, name)}")
        if self.log_every < 1 or self.max_bad_steps < 1:
            raise ConfigError("schedule.log_every and schedule.max_bad_steps must be >= 1")
        if not 0.0 <= self.warmup < 1.0:
            raise ConfigError(f"schedule.warmup is a share of training in [0, 1), got {self.warmup}")
        parse_duration(self.budget)

    def check_ends(self) -> None:
        """Raise unless a step limit or a budget will end training."""
        if not self.max_steps and parse_duration(self.budget) is None:
            raise ConfigError("set schedule.max_steps or schedule.budget (or both) so training "
                              "can end")


@dataclass(frozen=True)
class TrainConfig:
    """Batch and numerics. ``batch_size`` items per step = micro_batch x accumulation x world
    (items: packed windows for pretraining, preference pairs for DPO)."""

    batch_size: int = 128
    micro_batch: int = 16  # items per forward (0: the whole per-process batch at once)
    precision: Literal["auto", "bf16", "fp32"] = "auto"  # auto: bf16 autocast where fast (GPU, bf16 CPU)
    compile: bool | None = None  # None: on for GPU, off for CPU
    threads: int = 0  # CPU torch threads; 0: auto, the fastest count now (re-probed at each validation; OMP_NUM_THREADS wins)
    eval_windows: int = 256  # validation windows per evaluation (0: all; pretraining)
    seed: int = 0
    peak_tflops: float = 0.0  # per device, for MFU; 0: guess from the GPU name
    log: tuple[str, ...] = ()  # metric sinks besides metrics.jsonl: tensorboard, wandb

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.micro_batch < 0:
            raise ConfigError(f"train.batch_size must be >= 1 and train.micro_batch >= 0, got "
                              f"{self.batch_size} and {self.micro_batch}")
        if self.micro_batch and self.batch_size % self.micro_batch:
            raise ConfigError(
                f"train.batch_size={self.batch_size} must be a multiple of train.micro_batch="
                f"{self.micro_batch} (times the number of processes)")
        if self.eval_windows < 0:
            raise ConfigError(f"train.eval_windows must be >= 0, got {self.eval_windows}")
        if self.threads < 0:
            raise ConfigError(f"train.threads must be >= 0 (0: auto), got {self.threads}")
        unknown = sorted(set(self.log) - {"tensorboard", "wandb"})
        if unknown:
            raise ConfigError(f"train.log: unknown sink(s) {unknown}; use tensorboard, wandb")


@dataclass(frozen=True)
class ModelSource:
    """Where the weights start: a ``slam init`` folder (TWIST) or a named random shape."""

    init: str | None = None  # folder written by `slam init` (or any SpeechLM checkpoint)
    shape: str = "tiny"  # named shape (slamlm.model.named_shape) when init is None
    attn_impl: Literal["auto", "sdpa", "flex"] = "auto"  # auto: flex on GPU, sdpa on CPU


@dataclass(frozen=True)
class DataConfig:
    tokens: Path = Path("tokens")  # folder written by `slam pack`
    context: int = 1024  # tokens per row
    # ffd: whole documents packed first-fit decreasing (split only when longer than context);
    # doc_per_row: one document per row (slamkit's default); windows: fixed cuts (old)
    packing: Literal["ffd", "doc_per_row", "windows"] = "ffd"

    def __post_init__(self) -> None:
        if self.context < 2:
            raise ConfigError(f"data.context must be >= 2 tokens, got {self.context}")


@dataclass(frozen=True)
class DistConfig:
    strategy: Literal["ddp", "fsdp"] = "ddp"  # under torchrun: DDP replicas or FSDP2 shards


# the names these knobs had before the shared sections (recipes and flags still use them)
_MOVED = {"optim": ("lr", "min_lr", "weight_decay", "betas", "eps", "clip"),
          "schedule": ("max_steps", "budget", "warmup", "warmup_steps", "decay", "stop_at_step",
                       "log_every",
                       "eval_every", "ckpt_every", "keep_last", "max_bad_steps")}
PRETRAIN_ALIASES = {f"train.{k}": f"{sec}.{k}" for sec, keys in _MOVED.items() for k in keys}


@dataclass(frozen=True)
class PretrainConfig:
    """``slam pretrain``: packed tokens + init -> ``out/ckpt/step_*`` and ``metrics.jsonl``."""

    ALIASES: ClassVar[dict[str, str]] = PRETRAIN_ALIASES

    out: Path = Path("run")
    resume: str = "auto"  # auto (newest complete checkpoint) | none | a step_* folder
    device: str = "auto"
    model: ModelSource = field(default_factory=ModelSource)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=lambda: ScheduleConfig(budget="24h"))
    dist: DistConfig = field(default_factory=DistConfig)

    def __post_init__(self) -> None:
        self.schedule.check_ends()


def micro_size(cfg: TrainConfig, world: int) -> int:
    """Items per micro-batch (``micro_batch``, or the whole per-process batch when 0)."""
    if cfg.micro_batch:
        return cfg.micro_batch
    if cfg.batch_size % world:
        raise ConfigError(f"train.batch_size={cfg.batch_size} does not split over {world} "
                          "processes")
    return cfg.batch_size // world


def accumulation(cfg: TrainConfig, world: int) -> int:
    """Micro-batches per rank per optimizer step; errors when the batch does not divide."""
    per = micro_size(cfg, world) * world
    if cfg.batch_size % per:
        raise ConfigError(
            f"train.batch_size={cfg.batch_size} is not a multiple of micro_batch x processes "
            f"= {cfg.micro_batch} x {world}"
        )
    return cfg.batch_size // per
