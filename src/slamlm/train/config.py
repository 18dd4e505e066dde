"""Config of ``slam pretrain`` (frozen dataclasses) and the duration parser for budgets.

Example:
    >>> parse_duration("90s"), parse_duration("30m"), parse_duration("24h")
    (90.0, 1800.0, 86400.0)
    >>> # build_config(PretrainConfig, config_file="configs/slam.yaml", overrides=["train.lr=5e-4"])
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from slamlm.config import ConfigError

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str | float | int | None) -> float | None:
    """``"90s"``/``"30m"``/``"24h"``/``"1.5h"``/``"2d"`` or a number of seconds -> seconds."""
    if text is None or text == "" or text == 0:
        return None
    if isinstance(text, (int, float)):
        return float(text)
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([smhd]?)\s*", str(text).lower())
    if not m:
        raise ConfigError(f"train.budget: {text!r} is not a duration like 90s, 30m, 24h or 2d")
    return float(m.group(1)) * _UNITS[m.group(2) or "s"]


@dataclass(frozen=True)
class ModelSource:
    """Where the weights start: a ``slam init`` folder (TWIST) or a named random shape."""

    init: str | None = None  # folder written by `slam init` (or any SpeechLM checkpoint)
    shape: str = "tiny"  # named shape (slamlm.model.named_shape) when init is None
    attn_impl: Literal["auto", "sdpa", "flex"] = "auto"  # auto: flex on GPU, sdpa on CPU


@dataclass(frozen=True)
class DataConfig:
    tokens: Path = Path("tokens")  # folder written by `slam pack`
    context: int = 1024


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation. ``batch_size`` sequences per step = micro_batch x accumulation x world."""

    batch_size: int = 128
    micro_batch: int = 16
    lr: float = 1e-3
    min_lr: float = 5e-5
    warmup: float = 0.01  # share of progress spent warming up
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    clip: float = 0.5
    max_steps: int = 0  # 0: no step limit (the budget ends training)
    budget: str | None = "24h"  # wall-clock budget; the cosine ends there
    stop_at_step: int = 0  # >0: checkpoint and stop here without ending the schedule
    precision: Literal["auto", "bf16", "fp32"] = "auto"  # auto: bf16 on GPU, fp32 on CPU
    compile: bool | None = None  # None: on for GPU, off for CPU
    log_every: int = 10
    eval_every: int = 500
    eval_windows: int = 256  # validation windows per evaluation (0: all)
    ckpt_every: int = 1000
    keep_last: int = 3
    max_bad_steps: int = 20  # stop after this many NaN/inf steps in a row
    seed: int = 0
    peak_tflops: float = 0.0  # per device, for MFU; 0: guess from the GPU name


@dataclass(frozen=True)
class DistConfig:
    strategy: Literal["ddp", "fsdp"] = "ddp"


@dataclass(frozen=True)
class PretrainConfig:
    out: Path = Path("run")
    resume: str = "auto"  # auto (newest complete checkpoint) | none | a step_* folder
    device: str = "auto"
    model: ModelSource = field(default_factory=ModelSource)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    dist: DistConfig = field(default_factory=DistConfig)

    def __post_init__(self) -> None:
        t = self.train
        if not t.max_steps and parse_duration(t.budget) is None:
            raise ConfigError("set train.max_steps or train.budget (or both) so training can end")
        if t.batch_size % t.micro_batch:
            raise ConfigError(
                f"train.batch_size={t.batch_size} must be a multiple of train.micro_batch="
                f"{t.micro_batch} (times the number of processes)"
            )


def accumulation(cfg: TrainConfig, world: int) -> int:
    """Micro-batches per rank per optimizer step; errors when the batch does not divide."""
    per = cfg.micro_batch * world
    if cfg.batch_size % per:
        raise ConfigError(
            f"train.batch_size={cfg.batch_size} is not a multiple of micro_batch x processes "
            f"= {cfg.micro_batch} x {world}"
        )
    return cfg.batch_size // per
