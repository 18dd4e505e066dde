"""Learning-rate schedule on *progress* = max(step / max_steps, train_time / budget).

Defining the cosine on progress (not on steps) means a run that is ended by its time budget
still gets a full warm-up + cosine to ``min_lr`` (the peer toolkit's schedule breaks there).
Warm-up lasts max(``warmup_steps`` steps, ``warmup`` of progress), as slamkit's
max(100 steps, 1%); with a step limit the cosine then spans the remaining steps exactly as
HF's ``cosine_with_min_lr`` does.

Example:
    >>> lr_at(0.0, lr=1e-3, min_lr=5e-5, warmup=0.01)
    0.0
    >>> round(lr_at(0.01, 1e-3, 5e-5, 0.01), 6), round(lr_at(1.0, 1e-3, 5e-5, 0.01), 6)
    (0.001, 5e-05)
    >>> lr_at(0.5, 5e-5, 0.0, 0.0, step=50, warmup_steps=100, decay="constant")
    2.5e-05
"""

from __future__ import annotations

import math


def progress(step: int, max_steps: int, elapsed: float, budget: float | None) -> float:
    """Fraction of training done in [0, 1]: the larger of step and time fractions."""
    p = step / max_steps if max_steps else 0.0
    if budget:
        p = max(p, elapsed / budget)
    return min(max(p, 0.0), 1.0)


def warmup_share(warmup: float, warmup_steps: int, max_steps: int) -> float:
    """Share of progress that warm-up takes: max(warmup, warmup_steps / max_steps)."""
    by_steps = min(warmup_steps / max_steps, 0.999) if (warmup_steps and max_steps) else 0.0
    return max(warmup, by_steps)


def lr_at(p: float, lr: float, min_lr: float, warmup: float, step: int | None = None,
          warmup_steps: int = 0, max_steps: int = 0, decay: str = "cosine") -> float:
    """The learning rate at progress ``p`` (and optimizer step ``step``, 1-based).

    Warm-up: linear in whichever of ``p / warmup`` and ``step / warmup_steps`` is further
    behind; then ``decay``: cosine from ``lr`` to ``min_lr`` over the remaining progress, or
    constant at ``lr``.
    """
    ramp = 1.0
    if warmup > 0 and p < warmup:
        ramp = p / warmup
    if warmup_steps and step is not None and step < warmup_steps:
        ramp = min(ramp, step / warmup_steps)
    if ramp < 1.0:
        return lr * ramp
    if decay == "constant":
        return lr
    w = warmup_share(warmup, warmup_steps, max_steps)
    t = (p - w) / max(1.0 - w, 1e-12)
    return min_lr + 0.5 * (lr - min_lr) * (1.0 + math.cos(math.pi * min(max(t, 0.0), 1.0)))
