import numpy as np
import pytest

from slamlm.eval.score import accuracy, score_pairs, sequence_logprob, summarize
from slamlm.eval.stats import half_width, is_learned, shorter_scores, vs_chance, wilson_interval


def test_score_pairs_win_tie_loss():
    s = score_pairs([-1.0, -3.0, -2.0, np.nan], [-2.0, -1.0, -2.0, -1.0])
    assert s.tolist() == [1.0, 0.0, 0.5, 0.0]


def test_score_pairs_shape_mismatch():
    with pytest.raises(ValueError, match="positives"):
        score_pairs([1.0, 2.0], [1.0])


def test_sequence_logprob_variants():
    lp = np.array([-1.0, -2.0, -6.0])
    assert sequence_logprob(lp, "sum") == -9.0
    assert sequence_logprob(lp, "mean") == -3.0
    with pytest.raises(ValueError, match="variant"):
        sequence_logprob(lp, "max")


def test_accuracy_averages_within_key_first():
    # key a: (1 + 0) / 2 = 0.5; key b: 1 -> 0.75 (a plain mean would give 2/3)
    assert accuracy([1.0, 0.0, 1.0], ["a", "a", "b"]) == 0.75
    assert accuracy([1.0, 0.0, 1.0]) == pytest.approx(2 / 3)


def test_summarize_breakdown():
    recs = [
        {"key": "1", "group": {"type": "x"}, "score_mean": 1.0, "score_sum": 0.0},
        {"key": "1", "group": {"type": "x"}, "score_mean": 0.0, "score_sum": 0.0},
        {"key": "2", "group": {"type": "y"}, "score_mean": 1.0, "score_sum": 0.5},
    ]
    s = summarize(recs, ["type"])
    assert s["n_pairs"] == 3 and s["n_keys"] == 2
    assert s["accuracy"] == s["accuracy_mean"] == 0.75
    assert s["accuracy_sum"] == 0.25
    assert s["breakdown"]["type"]["x"] == {"n_pairs": 2, "n_keys": 1, "accuracy_mean": 0.5,
                                           "ci95_mean": [0.0546, 0.9454], "accuracy_sum": 0.0,
                                           "ci95_sum": [0.0, 0.7935]}
    assert s["breakdown"]["type"]["y"]["accuracy_sum"] == 0.5
    # no token counts in these records: no length baseline, so no verdict either way
    assert s["length_shorter"] is None and s["learned"] is None and s["ci_method"] == "wilson"
    assert s["ci95"] == s["ci95_mean"] and s["vs_chance"] == "within"


def test_summarize_no_pairs_gives_none():
    s = summarize([], ["type"])
    assert s["n_pairs"] == 0 and s["accuracy"] is None and s["accuracy_sum"] is None
    assert s["breakdown"] == {"type": {}}
    assert s["ci95"] is None and s["learned"] is None and s["vs_chance"] is None


def test_wilson_interval_known_values():
    # textbook values: 0 of 10 -> [0, 0.278]; 5 of 10 -> [0.237, 0.763]; 0.5 at n=200 -> +-6.9
    assert wilson_interval(0.0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson_interval(0.5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert half_width(200) == pytest.approx(0.0686, abs=1e-4)
    assert half_width(24) > 0.18  # the demo's old 24 items: +-19 points around chance
    assert wilson_interval(None, 10) is None and wilson_interval(0.5, 0) is None


def test_length_baselines_and_learned_rule():
    # 100 keys, 2 voices each; the positive is the shorter member in 80% of the keys
    recs = []
    for i in range(100):
        for _voice in range(2):
            short = i % 5 != 0
            recs.append({"key": str(i), "group": {}, "score_mean": float(i % 10 < 7),
                         "score_sum": float(short), "n_tokens_pos": 10 if short else 12,
                         "n_tokens_neg": 11})
    s = summarize(recs)
    assert s["n_pairs"] == 200 and s["n_keys"] == 100 and s["n_length_pairs"] == 200
    assert s["length_shorter"] == pytest.approx(0.8) and s["length_longer"] == pytest.approx(0.2)
    # the summed score just follows length: above chance, but not above the baseline
    assert s["accuracy_sum"] == pytest.approx(0.8) and s["ci95_sum"][0] > 0.5
    assert s["learned_sum"] is False
    # mean: 70% with a 95% interval above 50%, but below the 80% of "pick the shorter"
    assert s["accuracy"] == pytest.approx(0.7) and s["vs_chance"] == "above"
    assert s["learned"] is False
    assert is_learned(0.85, wilson_interval(0.85, 100), 0.8) is True
    assert is_learned(0.55, wilson_interval(0.55, 100), 0.5) is False  # interval holds 0.5
    assert is_learned(0.3, wilson_interval(0.3, 100), 0.5) is False
    assert vs_chance(wilson_interval(0.3, 100)) == "below"
    assert shorter_scores([3, 4, 5], [4, 4, 4]) == [1.0, 0.5, 0.0]
