import numpy as np
import pytest

from slamlm.eval.score import accuracy, score_pairs, sequence_logprob, summarize


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
    assert s["breakdown"]["type"]["x"] == {"n_pairs": 2, "accuracy_mean": 0.5, "accuracy_sum": 0.0}
    assert s["breakdown"]["type"]["y"]["accuracy_sum"] == 0.5


def test_summarize_no_pairs_gives_none():
    s = summarize([], ["type"])
    assert s["n_pairs"] == 0 and s["accuracy"] is None and s["accuracy_sum"] is None
    assert s["breakdown"] == {"type": {}}
