"""`slam export` model card from a tiny real run: data index, recipe, units identity, eval table."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from slamlm.cli import main
from slamlm.data import PackConfig, run_pack
from slamlm.eval.runner import EvalConfig, run_eval
from slamlm.units.kmeans import KMeans, save_kmeans
from slamlm.units.runner import UnitsConfig, run_units


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """audio -> mel units -> tokens -> 3 pretraining steps -> eval of the last checkpoint."""
    torch.set_num_threads(1)
    d = tmp_path_factory.mktemp("card")
    (d / "wav").mkdir()
    rng = np.random.default_rng(0)
    for i in range(10):
        t = np.arange(int((0.6 + 0.1 * i) * 16000)) / 16000
        x = 0.2 * np.sin(2 * np.pi * (110 + 40 * i) * t * (1 + 0.2 * np.sin(5 * t)))
        sf.write(d / "wav" / f"u{i}.wav", (x + 0.02 * rng.standard_normal(t.size)).astype(
            np.float32), 16000)
    torch.manual_seed(0)
    save_kmeans(KMeans(torch.randn(16, 80) * 2, encoder="mel", layer=0), d / "km.safetensors")
    run_units(UnitsConfig(input=str(d / "wav"), out=str(d / "units"),
                          kmeans=str(d / "km.safetensors"), num_workers=0))
    tokens = run_pack(PackConfig(units=d / "units", out=d / "tokens", n_units=16, context=32,
                                 val_fraction=0.2))
    assert main(["pretrain", "--tokens", str(tokens), "--out", str(d / "run"), "--max-steps",
                 "3", "--set", "train.budget=null", "--set", "train.batch_size=2",
                 "--set", "train.micro_batch=2", "--set", "data.context=32", "--set",
                 "device=cpu", "--set", "train.eval_every=0", "--set", "train.lr=2e-3",
                 "--set", "train.precision=fp32", "--set", "train.warmup_steps=0"]) == 0
    ckpt = sorted((d / "run" / "ckpt").glob("step_*"))[-1]
    pairs = [{"id": f"p{i}", "positive": [1, 2, 3, i % 16], "negative": [3, 2, 1, 1, 1 + i % 9]}
             for i in range(30)]
    (d / "pairs.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pairs))
    res = run_eval(EvalConfig(checkpoint=ckpt, benches={"mine": str(d / "pairs.jsonl")},
                              out=d / "run" / "eval", device="cpu"))
    return d, ckpt, json.loads(res.read_text())


def test_card_records_data_recipe_units_and_eval(tiny_run, tmp_path):
    d, ckpt, results = tiny_run
    assert main(["export", str(ckpt), "--out", str(tmp_path / "hf"), "--format", "hf"]) == 0
    card = (tmp_path / "hf/README.md").read_text()
    index = json.loads((d / "tokens/index.json").read_text())
    ident = json.loads((d / "units/identity.json").read_text())
    tr = index["splits"]["train"]
    assert f"- train: {tr['n_tokens']} tokens in {tr['n_docs']} documents" in card
    assert f"units hash `{index['units_hash']}`" in card and str(d / "units") in card
    assert "- schedule.max_steps: `3`" in card and "- optim.lr: `0.002`" in card
    assert "- model.shape: `tiny`" in card and "- data.context: `32`" in card
    assert (f"- encoder `mel`, layer {ident['layer']}, k 16, k-means hash "
            f"`{ident['kmeans_hash']}`") in card
    m = results["benchmarks"]["mine"]  # found in run/eval: it names this checkpoint
    lo, hi = m["ci95_mean"]
    row = (f"| mine | 30 | {100 * m['accuracy_mean']:.2f} | [{100 * lo:.1f}, {100 * hi:.1f}] | "
           f"{100 * m['accuracy_sum']:.2f} |")
    assert row in card and f"| {str(m['learned']).lower()} |" in card


def test_card_takes_repeated_eval_files_and_skips_other_checkpoints(tiny_run, tmp_path):
    d, ckpt, results = tiny_run
    other = {**results, "checkpoint": str(d / "run/ckpt/step_99999999"),
             "benchmarks": {"other": {**results["benchmarks"]["mine"], "n_pairs": 7}}}
    (d / "run/eval/x").mkdir(exist_ok=True)
    (d / "run/eval/x/results.json").write_text(json.dumps(other))
    assert main(["export", str(ckpt), "--out", str(tmp_path / "a")]) == 0
    assert "| other |" not in (tmp_path / "a/README.md").read_text()  # another step's numbers
    assert main(["export", str(ckpt), "--out", str(tmp_path / "b"), "--eval",
                 str(d / "run/eval/results.json"), "--results",
                 str(d / "run/eval/x/results.json")]) == 0
    card = (tmp_path / "b/README.md").read_text()
    assert "| mine | 30 |" in card and "| other | 7 |" in card
    assert main(["export", str(ckpt), "--out", str(tmp_path / "c"), "--eval",
                 str(d / "nope.json")]) == 1
