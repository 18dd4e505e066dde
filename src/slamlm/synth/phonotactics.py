"""Phone-transition frequency of a word, as Wuggy matches it: sWUGGY's non-words should be
as probable as their word by phonotactics alone, so that only knowing the word tells them apart.

A non-word made by swapping one segment can be phonotactically *more* typical than a rare
word ("unicorn" -> "unicurn"): a model that knows only phone statistics then prefers the
non-word, and sWUGGY lands below chance (measured on the demo: bench/NOTES.md, "n-gram
ceiling"). :func:`closest_phonotactics` keeps the options whose non-word's mean transition
log-probability is nearest the word's, under a phone bigram of the training words.

Example:
    >>> pb = PhoneBigram.fit({("k", "a", "t"): 5, ("b", "a", "t"): 2, ("k", "a", "p"): 1})
    >>> pb.score(["k", "a", "t"]) > pb.score(["t", "a", "k"])
    True
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

BOUNDARY = "#"


@dataclass(frozen=True)
class PhoneBigram:
    """Add-one smoothed phone bigram with word boundaries (``#``), from weighted words."""

    pairs: Mapping[tuple[str, str], int]
    firsts: Mapping[str, int]
    n_symbols: int
    words: frozenset[tuple[str, ...]] = frozenset()  # the phone strings it was fit on

    @classmethod
    def fit(cls, words: Mapping[tuple[str, ...], int]) -> PhoneBigram:
        """``words``: phone tuple -> count (tokens in the training text)."""
        pairs: Counter = Counter()
        for phones, c in words.items():
            seq = [BOUNDARY, *phones, BOUNDARY]
            for a, b in zip(seq, seq[1:]):
                pairs[(a, b)] += c
        firsts: Counter = Counter()
        for (a, _), c in pairs.items():
            firsts[a] += c
        symbols = {s for ab in pairs for s in ab}
        return cls(dict(pairs), dict(firsts), len(symbols) + 1, frozenset(words))

    def score(self, phones: Sequence[str]) -> float:
        """Mean log-probability of the word's transitions, boundaries included."""
        seq = [BOUNDARY, *phones, BOUNDARY]
        lps = [math.log((self.pairs.get((a, b), 0) + 1) / (self.firsts.get(a, 0) + self.n_symbols))
               for a, b in zip(seq, seq[1:])]
        return sum(lps) / len(lps)


def spoken_nonwords(options: list, phones: Mapping[str, Sequence[str]], model: PhoneBigram
                    ) -> list:
    """The options whose non-word espeak-ng does not say as the word or as another training
    word ("byke", "skarf" are the same audio as a word, not non-words); all when none is left.

    Example:
        >>> pb = PhoneBigram.fit({("k", "a", "t"): 5})
        >>> ph = {"cat": ["k", "a", "t"], "kat": ["k", "a", "t"], "kap": ["k", "a", "p"]}
        >>> [o[1] for o in spoken_nonwords([["cat", "kat", {}], ["cat", "kap", {}]], ph, pb)]
        ['kap']
    """
    heard = [o for o in options if tuple(phones[o[1]]) != tuple(phones[o[0]])
             and tuple(phones[o[1]]) not in model.words]
    return heard or options


def closest_phonotactics(options: list, phones: Mapping[str, Sequence[str]], model: PhoneBigram,
                         keep: float = 1 / 3, least: int = 2) -> list:
    """The options (``[word, non-word, extra]``) whose non-word's transition score is nearest
    the word's: the best ``keep`` share of them, at least ``least`` (all when fewer).
    Spoken homophones go first: a non-word that espeak-ng says with the word's phones (or
    another training word's: "byke", "skarf") is the same audio, not a non-word.

    Example:
        >>> pb = PhoneBigram.fit({("k", "a", "t"): 5, ("b", "a", "d"): 2})
        >>> ph = {"kat": ["k", "a", "t"], "kap": ["k", "a", "p"], "tak": ["t", "a", "k"]}
        >>> [o[1] for o in closest_phonotactics([["kat", "tak", {}], ["kat", "kap", {}]], ph, pb,
        ...                                     least=1)]
        ['kap']
    """
    options = spoken_nonwords(options, phones, model)
    if len(options) <= least:
        return options
    gap = [abs(model.score(phones[o[1]]) - model.score(phones[o[0]])) for o in options]
    n = max(least, math.ceil(keep * len(options)))
    order = sorted(range(len(options)), key=lambda i: (gap[i], i))[:n]
    return [options[i] for i in sorted(order)]
