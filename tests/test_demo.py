"""`slam demo` end to end at toy size (random tiny model, no ASR): every stage's output exists,
validation loss falls, the report has the eval table, and a re-run resumes instead of redoing."""

import json

import pytest

from slamlm.cli import main

TOY = ["stories=16", "bench_items=4", "preferences=12", "text_lm=none", "shape=tiny",
       "pretrain_budget=600s", "pretrain_max_steps=40", "dpo_budget=60s", "k=24", "context=128",
       "batch_size=8", "micro_batch=8", "lr=3e-3", "prompts=2", "max_new_tokens=20",
       "transcribe=false", "eval_init=true", "threads=1", "report_screenshot=false",
       "bench_sizes=[]", "nonwords=8"]


@pytest.mark.slow
def test_demo_end_to_end_and_resume(tmp_path, capsys):
    out = tmp_path / "demo"
    args = ["demo", "--out", str(out)] + [a for kv in TOY for a in ("--set", kv)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "random init (tiny shape), as asked" in printed and "report:" in printed
    for rel in ("synth/stories/manifest.jsonl", "synth/bench/lexical/dev/gold.csv",
                "phones/config.json", "units/identity.json", "init/model.safetensors", "tokens/index.json",
                "pretrain/metrics.jsonl", "eval/init/results.json", "eval/dpo/results.json",
                "generate/generations.jsonl", "report.html", "demo_summary.json"):
        assert (out / rel).exists(), rel
    # the benchmarks were built after the units, matched in them
    matched = [json.loads(x) for x in (out / "synth/bench/length_match.jsonl").read_text().splitlines()]
    lex = [r for r in matched if r["bench"] == "lexical"]
    assert len(lex) == 4 and all(len(r["pos_units"]) == len(r["neg_units"]) == 2 for r in lex)
    rows = [json.loads(x) for x in (out / "pretrain/metrics.jsonl").read_text().splitlines()]
    val = [r["val_loss"] for r in rows if "val_loss" in r]
    assert len(val) >= 2 and val[-1] < val[0] - 0.3  # learning is visible
    results = json.loads((out / "eval/dpo/results.json").read_text())
    assert {"swuggy", "sblimp", "ssc", "tsc"} <= set(results.get("benchmarks", results))
    html = (out / "report.html").read_text()
    assert "sblimp" in html and "data:audio/wav;base64," in html and html.count("<svg") >= 3
    steps = {s["step"]: s["seconds"] for s in json.loads((out / "demo_summary.json").read_text())["steps"]}
    # re-running resumes: nothing is redone, so the slow steps now take a fraction of the time
    before = (out / "init/model.safetensors").stat().st_mtime_ns
    assert main(args) == 0
    again = {s["step"]: s["seconds"] for s in json.loads((out / "demo_summary.json").read_text())["steps"]}
    assert (out / "init/model.safetensors").stat().st_mtime_ns == before
    assert again["pretrain"] < max(5.0, 0.5 * steps["pretrain"])
    assert again["synth stories"] < max(3.0, 0.5 * steps["synth stories"])


def test_summary_warns_when_the_machine_was_too_slow_to_learn():
    from slamlm.demo import MIN_TOKENS, _amount_lines

    slow = [{"step": s, "tokens": 4096 * s, "tokens_per_s": 200.0 + s} for s in (1, 5, 10, 16)]
    lines = _amount_lines(slow)
    assert lines[0] == "pretraining: 16 steps, 65536 tokens at ~210 tokens/s"
    assert "warning: only 65536 tokens" in lines[1] and "--pretrain-budget" in lines[1]
    fast = [{"step": s, "tokens": 4096 * s, "tokens_per_s": 3500.0}
            for s in (5, MIN_TOKENS // 4096 + 1)]
    assert len(_amount_lines(fast)) == 1 and _amount_lines([]) == []


def test_demo_depth_follows_the_device(monkeypatch):
    """6 text-LM blocks where bf16 is fast, 2 on a CPU that emulates it; an explicit count wins."""
    import slamlm.device as device
    from slamlm.demo import DemoConfig, demo_depth

    monkeypatch.setattr(device, "bf16_is_fast", lambda dev: True)
    assert demo_depth(DemoConfig(device="cpu")) == 6
    monkeypatch.setattr(device, "bf16_is_fast", lambda dev: False)
    assert demo_depth(DemoConfig(device="cpu")) == 2
    assert demo_depth(DemoConfig(device="cpu", keep_layers=3)) == 3
