"""Wuggy-style matching of sWUGGY non-words: phone transitions, and no spoken homophones."""

from __future__ import annotations

import pytest

from slamlm.synth.phonotactics import PhoneBigram, closest_phonotactics


def test_bigram_scores_seen_transitions_higher():
    pb = PhoneBigram.fit({("k", "a", "t"): 10, ("b", "a", "t"): 3})
    assert pb.score(["k", "a", "t"]) > pb.score(["b", "a", "t"]) > pb.score(["t", "a", "b"])
    assert pb.words == frozenset({("k", "a", "t"), ("b", "a", "t")})
    # add-one smoothing: an unseen symbol still has a finite score
    assert pb.score(["z", "z"]) == pytest.approx(pb.score(["q", "q"]))


def test_closest_keeps_the_nearest_share_and_drops_homophones():
    pb = PhoneBigram.fit({("k", "a", "t"): 10, ("b", "a", "t"): 3, ("m", "a", "t"): 1})
    ph = {"kat": ["k", "a", "t"], "cat": ["k", "a", "t"], "bat": ["b", "a", "t"],
          "kap": ["k", "a", "p"], "tak": ["t", "a", "k"], "gat": ["g", "a", "t"],
          "mmat": ["m", "a", "t"]}
    opts = [["kat", nw, {}] for nw in ("cat", "mmat", "kap", "tak", "gat")]
    kept = closest_phonotactics(opts, ph, pb, keep=0.5, least=1)
    names = [o[1] for o in kept]
    assert "cat" not in names  # said exactly like the word
    assert "mmat" not in names  # said like another training word
    assert len(names) == 2  # half of the 3 heard options, rounded up
    gaps = {nw: abs(pb.score(ph[nw]) - pb.score(ph["kat"])) for nw in ("kap", "tak", "gat")}
    assert sorted(names) == sorted(sorted(gaps, key=gaps.get)[:2])


def test_closest_keeps_everything_when_all_are_homophones_or_few():
    pb = PhoneBigram.fit({("k", "a", "t"): 1})
    ph = {"kat": ["k", "a", "t"], "cat": ["k", "a", "t"]}
    assert closest_phonotactics([["kat", "cat", {}]], ph, pb) == [["kat", "cat", {}]]
