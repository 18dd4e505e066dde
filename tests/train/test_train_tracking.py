"""--log tensorboard,wandb: the real writers get the same numbers as metrics.jsonl."""

from __future__ import annotations

import json

import pytest

from slamlm.cli import main
from slamlm.data import PackConfig, run_pack
from slamlm.data.synthetic import write_synthetic_units


@pytest.fixture(scope="module")
def tokens(tmp_path_factory):
    d = tmp_path_factory.mktemp("tok")
    write_synthetic_units(d / "units", 60, k=20, mean_len=30, seed=3)
    return run_pack(PackConfig(units=d / "units", out=d / "tokens", n_units=20, context=32,
                               val_fraction=0.1))


def test_tensorboard_and_wandb_offline_receive_the_metrics(tokens, tmp_path, monkeypatch):
    pytest.importorskip("tensorboard")
    pytest.importorskip("wandb")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    run = tmp_path / "run"
    assert main(["-q", "pretrain", "--tokens", str(tokens), "--out", str(run), "--max-steps", "4",
                 "--budget", "null", "--set", "train.batch_size=2", "--set", "train.micro_batch=2",
                 "--set", "data.context=32", "--set", "device=cpu", "--set", "train.log_every=1",
                 "--set", "train.eval_every=2", "--set", "train.warmup_steps=0",
                 "--log", "tensorboard,wandb"]) == 0
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    want = {r["step"]: r["loss"] for r in rows if "loss" in r}
    acc = EventAccumulator(str(run / "tensorboard"))
    acc.Reload()
    got = {e.step: e.value for e in acc.Scalars("train/loss")}
    assert got.keys() == want.keys() == {1, 2, 3, 4}
    assert all(got[s] == pytest.approx(want[s], rel=1e-6) for s in want)
    vals = {e.step: e.value for e in acc.Scalars("eval/val_loss")}
    assert set(vals) == {0, 2, 4}
    offline = list((run / "wandb").glob("offline-run-*"))
    assert len(offline) == 1 and list(offline[0].glob("*.wandb"))


def test_unknown_sink_is_refused(tokens, tmp_path, capsys):
    assert main(["-q", "pretrain", "--tokens", str(tokens), "--out", str(tmp_path / "r"),
                 "--max-steps", "1", "--log", "mlflow"]) == 1
    assert "unknown sink(s) ['mlflow']" in capsys.readouterr().err
