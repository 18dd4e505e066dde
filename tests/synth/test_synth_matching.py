"""Length matching of benchmark pairs: option choice, balanced signs, deterministic measures."""

import random
import re

import pytest

from slamlm.synth.bench_items import blimp_items, chunk_positions, cloze_items, nonword_options
from slamlm.synth.matching import Measurer, balanced_wants, match_items, pick_option
from slamlm.synth.stories import load_lexicon
from slamlm.synth.tts import Voice


def test_pick_option_prefers_wanted_sign_within_tolerance():
    durs = [([1.0], [1.2]), ([1.0], [0.99]), ([1.0], [1.02])]
    assert pick_option(durs, want_shorter=False) == 1  # closest, and positive longer
    assert pick_option(durs, want_shorter=True) == 2  # 0.02 is within 0.03 of the best 0.01
    assert pick_option(durs, want_shorter=True, tol=0.0) == 1  # no slack: closest wins
    assert pick_option([([1.0], [1.5]), ([1.0], [0.2])], want_shorter=False) == 0
    with pytest.raises(ValueError):
        pick_option([], True)


def test_balanced_wants_half_and_deterministic():
    ids = [f"b{i:05d}" for i in range(101)]
    w = balanced_wants(ids, "k")
    assert sum(w.values()) == 51 and w == balanced_wants(ids, "k")
    assert w != balanced_wants(ids, "other")
    # unrelated to the item index (sBLIMP cycles its types by index)
    assert 15 < sum(w[i] for i in ids[::2]) < 36


def test_nonwords_keep_syllable_positions():
    lx = load_lexicon()
    pool = sorted({w for s in ("animals", "objects", "foods") for w in lx[s] if w.isalpha()})

    def onset(w: str) -> str:
        return re.match(r"[^aeiouy]*", w).group()

    def coda(w: str) -> str:
        return re.search(r"[^aeiouy]*$", w).group()

    onsets, codas = {onset(w) for w in pool}, {coda(w) for w in pool}
    n = 0
    for k, word in enumerate(pool[:80]):
        for nw in nonword_options(word, random.Random(k), pool, k=6):
            assert nw != word and nw.isalpha() and chunk_positions([nw[0]])[0] != "medial"
            # leading / trailing consonants come from word starts / ends (old rule: "wbong")
            assert onset(nw) in onsets and coda(nw) in codas, (word, nw)
            n += 1
    assert n > 300


def test_minimal_pairs_come_in_both_directions():
    longer_bad = shorter_bad = 0
    for it in blimp_items(120, seed=3):
        assert len(it["options"]) == 8 and it["options"][0][:2] == [it["good"], it["bad"]]
        for good, bad, extra in it["options"]:
            assert good != bad and extra["subtype"]
            longer_bad += len(bad) > len(good)
            shorter_bad += len(bad) < len(good)
    assert longer_bad > 80 and shorter_bad > 80
    for it in cloze_items(3) + cloze_items(3, topic=True):
        assert len(it["options"]) >= 4 and [it["good"], it["bad"], {}] == it["options"][0]


def test_match_items_is_deterministic_and_picks_close_options():
    its = [{"id": "a", "options": [["Zelda slept.", "Zelda found the big red ball today.", {}],
                                   ["Zelda slept.", "Zelda hugged.", {}]]}]
    with Measurer(workers=1) as m:
        rec = match_items([dict(its[0])], [[Voice("en-us")]], m, "k")[0]
        again = Measurer(workers=1).seconds("Zelda hugged.", Voice("en-us"))
    assert rec["options"] == 2 and abs(rec["gap_s"]) < 0.3
    assert rec["neg_s"][0] == pytest.approx(again, abs=0.006)
