"""Pair scores (pure): 1 if log p(pos) > log p(neg), 0.5 on a tie, else 0; and their averages.

Two variants: ``sum`` (total log-prob of the sequence) and ``mean`` (length-normalised, per
token). ``mean`` is the primary metric, as in the peer toolkit. Averaging: pairs sharing a
``key`` (ZR2021: the same id in several voices) are averaged first, then keys are averaged.

Example:
    >>> score_pairs([-3.0, -5.0, -2.0], [-4.0, -1.0, -2.0]).tolist()
    [1.0, 0.0, 0.5]
    >>> accuracy([1.0, 0.0, 1.0], keys=["a", "a", "b"])
    0.75
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

VARIANTS = ("mean", "sum")
PRIMARY = "mean"
CHANCE = 0.5


def score_pairs(pos_logprobs: Sequence[float], neg_logprobs: Sequence[float]) -> np.ndarray:
    """Elementwise 1.0 / 0.5 / 0.0 for pos > / == / < neg (NaN never wins)."""
    pos = np.asarray(pos_logprobs, dtype=np.float64)
    neg = np.asarray(neg_logprobs, dtype=np.float64)
    if pos.shape != neg.shape:
        raise ValueError(f"score_pairs: {pos.shape} positives vs {neg.shape} negatives")
    return np.where(pos > neg, 1.0, np.where(pos == neg, 0.5, 0.0))


def sequence_logprob(token_lps: np.ndarray, variant: str) -> float:
    """Summed or mean log-prob of one sequence's scored tokens."""
    if variant == "sum":
        return float(np.sum(token_lps))
    if variant == "mean":
        return float(np.mean(token_lps)) if len(token_lps) else 0.0
    raise ValueError(f"unknown variant {variant!r}; use one of {VARIANTS}")


def accuracy(scores: Sequence[float], keys: Sequence[str] | None = None) -> float:
    """Mean score, averaging pairs with the same key first (keys in any order)."""
    scores = list(scores)
    if not scores:
        return float("nan")
    if keys is None:
        return float(np.mean(scores))
    per_key: dict[str, list[float]] = defaultdict(list)
    for s, k in zip(scores, keys, strict=True):
        per_key[k].append(s)
    return float(np.mean([np.mean(v) for v in per_key.values()]))


def _finite(x: float) -> float | None:
    return None if np.isnan(x) else x


def summarize(records: list[dict[str, Any]], breakdown: Sequence[str] = ()) -> dict[str, Any]:
    """Accuracy per variant (key-averaged), pair/key counts and per-group breakdowns.

    Keys: ``accuracy`` (the primary, mean variant), ``accuracy_mean``, ``accuracy_sum``,
    ``n_pairs``, ``n_keys``, ``chance``, ``primary``, ``breakdown[field][group]``; an
    accuracy is None when no pair could be scored.

    ``records`` are per-pair dicts with ``key``, ``group`` and ``score_mean``/``score_sum``.
    """
    keys = [r["key"] for r in records]
    out: dict[str, Any] = {
        "n_pairs": len(records),
        "n_keys": len(set(keys)),
        "chance": CHANCE,
        "primary": PRIMARY,
        **{f"accuracy_{v}": _finite(accuracy([r[f"score_{v}"] for r in records], keys))
           for v in VARIANTS},
        "breakdown": {},
    }
    out["accuracy"] = out[f"accuracy_{PRIMARY}"]
    for field in breakdown:
        groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in records:
            if field in r["group"]:
                groups[str(r["group"][field])].append(r)
        out["breakdown"][field] = {
            g: {"n_pairs": len(rs),
                **{f"accuracy_{v}": accuracy([r[f"score_{v}"] for r in rs], [r["key"] for r in rs])
                   for v in VARIANTS}}
            for g, rs in sorted(groups.items())
        }
    return out
