"""Learning-rate schedule on *progress* = max(step / max_steps, elapsed / budget).

Defining the cosine on progress (not on steps) means a run that is ended by its time budget
still gets a full warm-up + cosine to ``min_lr`` (the peer toolkit's schedule breaks there).

Example:
    >>> lr_at(0.0, lr=1e-3, min_lr=5e-5, warmup=0.01)
    0.0
    >>> round(lr_at(0.01, 1e-3, 5e-5, 0.01), 6), round(lr_at(1.0, 1e-3, 5e-5, 0.01), 6)
    (0.001, 5e-05)
"""

from __future__ import annotations

import math


def progress(step: int, max_steps: int, elapsed: float, budget: float | None) -> float:
    """Fraction of training done in [0, 1]: the larger of step and time fractions."""
    p = step / max_steps if max_steps else 0.0
    if budget:
        p = max(p, elapsed / budget)
    return min(max(p, 0.0), 1.0)


def lr_at(p: float, lr: float, min_lr: float, warmup: float) -> float:
    """Linear warm-up to ``lr`` over the first ``warmup`` of progress, then cosine to ``min_lr``."""
    if warmup > 0 and p < warmup:
        return lr * p / warmup
    t = (p - warmup) / max(1.0 - warmup, 1e-12)
    return min_lr + 0.5 * (lr - min_lr) * (1.0 + math.cos(math.pi * min(t, 1.0)))
