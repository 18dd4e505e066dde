"""Pretraining: ``fit()`` loop, AdamW + progress-based cosine, checkpoints, DDP/FSDP2.

Example:
    >>> # from slamlm.train import PretrainConfig, fit
"""

from slamlm.train.config import PretrainConfig, parse_duration
from slamlm.train.loop import fit, run_pretrain

__all__ = ["PretrainConfig", "parse_duration", "fit", "run_pretrain"]
