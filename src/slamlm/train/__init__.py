"""Training: the one ``fit(cfg, objective)`` loop, pretraining as an objective, AdamW + progress-based cosine, checkpoints, DDP/FSDP2.

Submodules are imported lazily so that ``slam --help`` does not import torch.

Example:
    >>> # from slamlm.train import PretrainConfig, run_pretrain
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {"PretrainConfig": "slamlm.train.config", "parse_duration": "slamlm.train.config",
         "fit": "slamlm.train.loop", "run_pretrain": "slamlm.train.pretrain",
         "PretrainObjective": "slamlm.train.pretrain", "OptimConfig": "slamlm.train.config",
         "ScheduleConfig": "slamlm.train.config", "TrainConfig": "slamlm.train.config"}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'slamlm.train' has no attribute {name!r}")
