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


def test_nearest_in_units_sums_gaps_over_voices_and_keeps_the_drawn_sign():
    from slamlm.synth.matching import nearest_in_units

    # +1 in one voice and -1 in the other is not a match (its mean gap is 0)
    assert nearest_in_units(["a", "b"], [[1, -1], [0, 1]], True) == ["b"]
    assert nearest_in_units(["a", "b", "c"], [[0, 0], [0, 0], [1, 0]], True) == ["a", "b"]
    # tied in cost: the drawn sign (positive shorter) wins, else every tied option stays
    assert nearest_in_units(["a", "b"], [[1], [-1]], True) == ["b"]
    assert nearest_in_units(["a", "b"], [[1], [1]], True) == ["a", "b"]


def test_match_items_by_units_counts_what_the_files_hold():
    """A unit counter (here: one unit per started 0.1 s of audio) decides before durations."""
    seen: list[int] = []

    def tenths(wavs):
        seen.append(len(wavs))
        return [-(-len(w) // 1600) for w in wavs]

    v = Voice("en-us")
    long_bad = ["Zelda slept.", "Zelda found the big red ball on the hill today.", {}]
    near_bad = ["Zelda slept.", "Zelda sat.", {}]
    with Measurer(workers=1, units=tenths) as m:
        rec = match_items([{"id": "a", "options": [long_bad, near_bad]}], [[v]], m, "k",
                          unit_voices=[[v]])[0]
        words = {t: m.unit_count(t, v) for t in ("Zelda slept.", "Zelda sat.")}
        assert m.seconds("Zelda sat.", v) > 0  # durations came with the same synthesis
    assert rec["options"] == 1  # only the option nearest in units reached the durations
    assert rec["pos_units"] == [words["Zelda slept."]] and rec["neg_units"] == [words["Zelda sat."]]
    assert sum(seen) == 3  # each distinct text once
    with pytest.raises(ValueError, match="no unit counter"):
        Measurer(workers=1).measure_units([[("Zelda sat.", v)]])


def test_shortlist_by_phones_keeps_the_nearest_in_phone_count():
    from slamlm.synth.matching import shortlist_by_phones

    ph = {"a b": ["a", "b"], "a": ["a"], "a b c": ["a", "b", "c"], "x y": ["x", "y"]}
    opts = [["a b", "a b c", {}], ["a b", "a", {}], ["a b", "x y", {}]]
    assert shortlist_by_phones(opts, ph, 1) == [opts[2]]
    assert shortlist_by_phones(opts, ph, 2) == [opts[0], opts[2]]  # ties: the earlier first
    assert shortlist_by_phones(opts, ph, 5) == opts


def test_match_rates_in_units_picks_the_rate_nearest_in_units_with_balanced_signs():
    """SALMon's other speaker: of the rates around the duration match, the one whose unit
    count (here one unit per started 0.1 s) is nearest the same speaker's; residual gaps
    take both signs over the items."""
    from slamlm.synth.matching import RATE_SPREAD, match_rates_in_units

    def tenths(wavs):
        return [-(-len(w) // 1600) for w in wavs]

    texts = ["and then Zelda sang with the cat.", "and then Omar walked with the dog.",
             "and then Ines rested with the fox.", "and then Yuri danced with the owl."]
    a, b = Voice("en-us"), Voice("en-us+f3", 175, 50)
    with Measurer(workers=1, units=tenths) as m:
        got = match_rates_in_units([(t, a, b) for t in texts], m, "salmon/test")
        rates = {t: [Voice(b.name, b.rate + d, b.pitch) for d in RATE_SPREAD] for t in texts}
        for t, v in zip(texts, got):
            assert v.name == b.name and v.pitch == b.pitch and v in rates[t]
            best = min(abs(m.unit_count(t, a) - m.unit_count(t, c)) for c in rates[t])
            assert abs(m.unit_count(t, a) - m.unit_count(t, v)) == best
        gaps = [m.unit_count(t, a) - m.unit_count(t, v) for t, v in zip(texts, got)]
    assert got == match_rates_in_units([(t, a, b) for t in texts],
                                       Measurer(workers=1, units=tenths), "salmon/test")
    assert not (all(g > 0 for g in gaps) or all(g < 0 for g in gaps))
