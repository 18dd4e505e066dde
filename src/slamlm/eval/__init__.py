"""Evaluation: likelihood scoring of benchmark pairs (sWUGGY, sBLIMP, StoryCloze, SALMon).

Example:
    >>> from slamlm.eval import score_pairs
    >>> score_pairs([-1.0], [-2.0]).tolist()
    [1.0]
"""

from slamlm.eval.pairs import Pair
from slamlm.eval.score import score_pairs

__all__ = ["Pair", "score_pairs"]
