"""How sure a benchmark score is: 95% intervals, length-only baselines and the ``learned`` rule.

- **Interval**: the Wilson score interval (z = 1.96) of the key-averaged accuracy over the
  number of *keys* (independent items: ZR2021 averages an id's voices first). A key's score
  is a mean in [0, 1] (0.5 ties, voices averaged) whose variance is at most ``p (1 - p)``,
  so for averaged keys the interval is conservative; for one 0/1 pair per key it is the
  usual binomial Wilson interval.
- **Length baselines**: the accuracy of a content-blind rule that always picks the member of
  a pair with fewer tokens (``length_shorter``), or with more (``length_longer``); a tie
  counts half, keys are averaged as for the model, so ``longer = 1 - shorter``. Summed
  log-prob tends to prefer the shorter member, mean log-prob the longer one.
- **learned**: the 95% interval lies above chance (its low end > 0.5) *and* the accuracy is
  above both length baselines (> max(shorter, longer)); ``None`` when the pairs carry no
  lengths (no baseline to beat).

Example:
    >>> [round(x, 3) for x in wilson_interval(0.75, 40)]
    [0.598, 0.858]
    >>> is_learned(0.75, (0.598, 0.858), 0.55)
    True
    >>> is_learned(0.75, (0.598, 0.858), 0.2)     # the "pick the longer one" rule gets 0.8
    False
"""

from __future__ import annotations

import math
from collections.abc import Sequence

Z95 = 1.959963984540054
CI_METHOD = "wilson"
DEFINITIONS = {
    "ci95": "Wilson score interval (z = 1.96) of the accuracy over n_keys independent items "
            "(pairs sharing a key, e.g. one id in several voices, are averaged first; for "
            "such averages the interval is conservative)",
    "length_shorter": "accuracy of always picking the member with fewer tokens (ties half), "
                      "key-averaged like the model's accuracy; length_longer = 1 - it",
    "learned": "ci95 low end > chance (0.5) and accuracy > max(length_shorter, "
               "length_longer); null when pairs carry no token counts",
    "vs_chance": "'above' / 'below' when the 95% interval excludes chance, else 'within'",
}


def wilson_interval(p: float | None, n: int, z: float = Z95) -> tuple[float, float] | None:
    """Wilson score interval of a proportion ``p`` over ``n`` trials (``None`` if undefined).

    Example:
        >>> [round(x, 3) for x in wilson_interval(0.5, 200)]
        [0.431, 0.569]
    """
    if p is None or n <= 0 or not math.isfinite(p):
        return None
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def half_width(n: int, p: float = 0.5) -> float:
    """Half the width of the 95% interval at ``n`` items (chance-level score by default)."""
    ci = wilson_interval(p, n)
    return float("nan") if ci is None else (ci[1] - ci[0]) / 2


def shorter_scores(n_pos: Sequence[int], n_neg: Sequence[int]) -> list[float]:
    """1 / 0.5 / 0 per pair for positive shorter / as long / longer (in tokens)."""
    return [1.0 if a < b else 0.5 if a == b else 0.0 for a, b in zip(n_pos, n_neg, strict=True)]


def vs_chance(ci: tuple[float, float] | None, chance: float = 0.5) -> str | None:
    """``above`` / ``below`` when the interval excludes chance, else ``within``."""
    if ci is None:
        return None
    return "above" if ci[0] > chance else "below" if ci[1] < chance else "within"


def is_learned(acc: float | None, ci: tuple[float, float] | None, shorter: float | None,
               chance: float = 0.5) -> bool | None:
    """The ``learned`` rule (module docstring); ``None`` without a length baseline."""
    if acc is None or ci is None:
        return False if shorter is not None else None
    if shorter is None:
        return None
    return bool(ci[0] > chance and acc > max(shorter, 1.0 - shorter))
