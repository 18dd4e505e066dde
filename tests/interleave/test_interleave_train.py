"""A short interleaved pretraining run on synthetic spoken data: per-modality losses fall and
the cross-modal eval runs (the longer comparison is bench/interleave_demo.py)."""

from __future__ import annotations

import json

import pytest
import torch
from interleave_helpers import run_demo

from slamlm.interleave.model import load_interleaved


@pytest.fixture
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # shared CPU: extra threads only spin
    yield
    torch.set_num_threads(n)


@pytest.mark.slow
def test_interleaved_pretraining_lowers_each_modality_loss(tmp_path, one_thread):
    res = run_demo(tmp_path, steps=40, n_stories=120, n_pairs=8, lr=5e-3)
    before, after = res["before"]["val"], res["after"]["val"]
    for kind in ("unit", "text", "marker"):
        assert before[f"n_{kind}"] == after[f"n_{kind}"] > 0
    # untrained: ~log(V) on every kind; trained: units and text well below
    assert before["unit"] > 3.5 and before["text"] > 3.5
    assert after["unit"] < before["unit"] - 1.0
    assert after["text"] < before["text"] - 1.0
    assert after["marker"] < before["marker"]
    cloze = res["after"]["cloze"]
    assert cloze["n_pairs"] == 8
    for d in ("text>speech", "speech>text", "text>text", "speech>speech"):
        for norm in ("full", "restricted"):
            assert 0.0 <= cloze[d][norm]["acc_mean"] <= 1.0
    # same-modality text continuation is learnt fast (noun -> its verb phrase)
    assert cloze["text>text"]["full"]["acc_mean"] > res["before"]["cloze"]["text>text"]["full"]["acc_mean"]
    # the trained checkpoint is still an interleaved one: tokenizer found, vocab kept
    model, meta, tok = load_interleaved(res["checkpoint"])
    assert meta["vocab"]["n_text"] > 0 and tok.encode(" the cat", add_special_tokens=False)
    metrics = [json.loads(line) for line in
               (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert metrics[-1]["final"] and metrics[-1]["val_loss"] == pytest.approx(after["all"], rel=0.05)
