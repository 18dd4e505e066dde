"""Pair scores (pure): 1 if log p(pos) > log p(neg), 0.5 on a tie, else 0; and their averages.

Two variants: ``sum`` (total log-prob of the sequence) and ``mean`` (length-normalised, per
token). ``mean`` is the primary metric, as in the peer toolkit. Averaging: pairs sharing a
``key`` (ZR2021: the same id in several voices) are averaged first, then keys are averaged.
Every accuracy comes with its 95% interval, beside the length-only baselines, and a
``learned`` verdict (definitions in :mod:`slamlm.eval.stats`).

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

from slamlm.eval.stats import CI_METHOD, is_learned, shorter_scores, vs_chance, wilson_interval

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


def _ci(acc: float | None, n_keys: int) -> list[float] | None:
    ci = wilson_interval(acc, n_keys)
    return None if ci is None else [round(ci[0], 4), round(ci[1], 4)]


def _group_stats(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Pair/key counts and, per variant, the accuracy and its 95% interval."""
    keys = [r["key"] for r in records]
    n_keys = len(set(keys))
    out: dict[str, Any] = {"n_pairs": len(records), "n_keys": n_keys}
    for v in VARIANTS:
        acc = _finite(accuracy([r[f"score_{v}"] for r in records], keys))
        out[f"accuracy_{v}"] = acc
        out[f"ci95_{v}"] = _ci(acc, n_keys)
    return out


def _length_stats(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Length-only baselines (``None`` when a record has no token counts)."""
    have = [r for r in records if "n_tokens_pos" in r and "n_tokens_neg" in r]
    if not records or len(have) < len(records):
        return {"length_shorter": None, "length_longer": None, "n_length_pairs": len(have)}
    s = shorter_scores([r["n_tokens_pos"] for r in have], [r["n_tokens_neg"] for r in have])
    shorter = accuracy(s, [r["key"] for r in have])
    return {"length_shorter": shorter, "length_longer": 1.0 - shorter,
            "n_length_pairs": len(have),
            "length_shorter_ci95": _ci(shorter, len({r["key"] for r in have}))}


def summarize(records: list[dict[str, Any]], breakdown: Sequence[str] = ()) -> dict[str, Any]:
    """Accuracy per variant (key-averaged) with 95% intervals, length baselines, ``learned``,
    pair/key counts and per-group breakdowns.

    Keys: ``accuracy`` (the primary, mean variant), ``accuracy_mean``, ``accuracy_sum``,
    ``ci95`` / ``ci95_mean`` / ``ci95_sum`` ([low, high]), ``ci_method``, ``length_shorter``,
    ``length_longer``, ``n_length_pairs``, ``learned`` / ``learned_mean`` / ``learned_sum``,
    ``vs_chance``, ``n_pairs``, ``n_keys``, ``chance``, ``primary``,
    ``breakdown[field][group]`` (counts, accuracies and intervals); an accuracy is None when
    no pair could be scored.

    ``records`` are per-pair dicts with ``key``, ``group``, ``score_mean``/``score_sum`` and
    (for the length baselines) ``n_tokens_pos``/``n_tokens_neg``.

    Example:
        >>> recs = [{"key": str(i), "group": {}, "score_mean": float(i % 4 != 0),
        ...          "score_sum": 0.5, "n_tokens_pos": 10, "n_tokens_neg": 10 + i % 2}
        ...         for i in range(100)]
        >>> s = summarize(recs)
        >>> s["accuracy"], s["ci95"], s["length_shorter"], s["learned"]
        (0.75, [0.657, 0.8245], 0.75, False)
    """
    out: dict[str, Any] = {**_group_stats(records), "chance": CHANCE, "primary": PRIMARY,
                           "ci_method": CI_METHOD, **_length_stats(records), "breakdown": {}}
    for v in VARIANTS:
        ci = out[f"ci95_{v}"]
        out[f"learned_{v}"] = is_learned(out[f"accuracy_{v}"], ci, out["length_shorter"], CHANCE)
    out["accuracy"] = out[f"accuracy_{PRIMARY}"]
    out["ci95"] = out[f"ci95_{PRIMARY}"]
    out["learned"] = out[f"learned_{PRIMARY}"]
    out["vs_chance"] = vs_chance(out["ci95"], CHANCE)
    for field in breakdown:
        groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in records:
            if field in r["group"]:
                groups[str(r["group"][field])].append(r)
        out["breakdown"][field] = {g: _group_stats(rs) for g, rs in sorted(groups.items())}
    return out
