import json

import numpy as np
import pytest
import soundfile as sf

from slamlm.report.browser import find_chromium, render_check, screenshot
from slamlm.report.html import build_report
from slamlm.report.plots import line_plot_svg


def make_run(root):
    pre = root / "pretrain"
    pre.mkdir(parents=True)
    rows = [{"step": s, "loss": 6.0 - 0.1 * s, "lr": 1e-3 * min(1, s / 3), "tokens_per_s": 900 + s,
             "mfu": 0.01} for s in range(1, 21)]
    rows += [{"step": s, "val_loss": 6.2 - 0.12 * s} for s in (5, 10, 20)]
    (pre / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + "{broken\n")
    (pre / "config.yaml").write_text("train:\n  lr: 0.001\n")
    ev = root / "eval"
    ev.mkdir()
    (ev / "results.json").write_text(json.dumps({
        "sblimp_synthetic": {"accuracy": 0.61, "accuracy_sum": 0.58, "n_pairs": 40, "chance": 0.5},
        "swuggy_synthetic": {"accuracy": 0.48, "accuracy_sum": 0.5, "n_pairs": 40, "chance": 0.5}}))
    gen = root / "generate"
    gen.mkdir()
    sr = 16000
    wav = (0.2 * np.sin(2 * np.pi * 200 * np.arange(sr) / sr)).astype(np.float32)
    sf.write(gen / "g0.wav", wav, sr)
    sf.write(gen / "p0.wav", wav, sr)
    (gen / "generations.jsonl").write_text(json.dumps(
        {"id": "g0", "prompt_path": "p0.wav", "wav": "g0.wav", "transcript": "once upon a time",
         "generated_units": [1, 2, 3]}) + "\n")
    return root


def test_plot_svg_has_axes_and_series():
    svg = line_plot_svg({"a": ([0, 1, 2], [1, 2, float("nan")]), "b": ([0, 2], [3, 1])}, title="t")
    assert svg.count('class="series"') == 2 and "<text" in svg
    assert "no data" in line_plot_svg({"a": ([], [])})


def test_report_contents(tmp_path):
    out = build_report(make_run(tmp_path / "run"))
    text = out.read_text()
    assert out.name == "report.html"
    assert text.count('<svg') >= 4  # loss, lr, throughput, mfu
    assert "sblimp_synthetic" in text and "61.0%" in text and "58.86" in text  # paper column
    assert text.count("data:audio/wav;base64,") == 2
    assert "once upon a time" in text and "pretrain/config.yaml" in text
    assert "validation loss" in text  # summary table picks val_loss start/end


def test_missing_run_dir(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_report(tmp_path / "nope")


@pytest.mark.skipif(find_chromium() is None, reason="Chromium not installed (make setup-test installs it)")
def test_report_renders_in_chromium(tmp_path):
    out = build_report(make_run(tmp_path / "run"))
    counts = render_check(out)
    assert counts["plots"] >= 4 and counts["series"] >= 5
    assert counts["tables"] >= 2 and counts["audio"] == 2 and counts["audio_ok"] == 2
    png = screenshot(out, tmp_path / "run" / "report.png", height=1600)
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 30_000  # a blank page compresses to a few kB


def make_full_run(root):
    """A run as the demo writes it now: checkpoint vocab, DPO metrics, new results.json
    fields (intervals, length baselines, learned), a benchmark texts.jsonl for references."""
    run = make_run(root)
    ckpt = run / "pretrain" / "ckpt" / "step_00000020"
    ckpt.mkdir(parents=True)
    (ckpt / "config.json").write_text(json.dumps({"vocab": {"n_units": 100}}))
    dpo = run / "dpo"
    dpo.mkdir()
    rows = [{"step": s, "loss": 0.69 - 0.01 * s, "dpo_loss": 0.69 - 0.01 * s,
             "reward_accuracy": 0.5 + 0.02 * s, "reward_margin": 0.1 * s, "lr": 5e-5,
             "heldout_reward_accuracy": 0.5 + 0.01 * s, "heldout_reward_margin": 0.05 * s}
            for s in range(1, 11)]
    (dpo / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    ev = run / "eval" / "pretrain"
    ev.mkdir(parents=True)
    base = {"n_pairs": 400, "n_keys": 200, "chance": 0.5, "length_shorter": 0.51,
            "length_longer": 0.49, "n_length_pairs": 400}
    (ev / "results.json").write_text(json.dumps({"benchmarks": {
        "sblimp": {**base, "accuracy": 0.71, "accuracy_sum": 0.52, "ci95": [0.643, 0.769],
                   "ci95_sum": [0.451, 0.588], "learned": True, "learned_sum": False},
        "swuggy": {**base, "accuracy": 0.41, "accuracy_sum": 0.50, "ci95": [0.343, 0.479],
                   "ci95_sum": [0.431, 0.569], "learned": False, "learned_sum": False}}}))
    bench = run / "synth" / "bench"
    (bench / "sSC").mkdir(parents=True)
    sf.write(bench / "sSC" / "0_correct.wav", np.zeros(16000, np.float32), 16000)
    (bench / "texts.jsonl").write_text(json.dumps(
        {"bench": "sSC", "id": "sSC/0_correct", "path": "sSC/0_correct.wav",
         "text": "Once upon a time there was a cat.",
         "words": [["Once", 0.1, 0.4], ["upon", 0.5, 0.8], ["a", 0.9, 1.0], ["time", 3.1, 3.4],
                   ["there", 3.5, 3.8]]}) + "\n")
    gen = run / "generate"
    recs = [json.loads(line) for line in (gen / "generations.jsonl").read_text().splitlines()]
    recs[0]["prompt_path"] = str(bench / "sSC" / "0_correct.wav")
    recs[0]["prompt_clip"] = "p0.wav"
    recs[0]["prompt_transcript"] = "once upon a"
    (gen / "generations.jsonl").write_text(json.dumps(recs[0]) + "\n")
    (gen / "transcripts.json").write_text(json.dumps({"auto_bleu": 12.5, "asr": "pocketsphinx"}))
    return run


def test_report_scores_intervals_and_plots(tmp_path):
    text = build_report(make_full_run(tmp_path / "run")).read_text()
    # every score with its interval; learned in green, significantly below chance in red
    assert '<td class="good">71.0% <small>[64.3, 76.9]</small>' in text
    assert '<td class="bad">41.0% <small>[34.3, 47.9]</small>' in text
    assert "51.0% / 49.0%" in text and "400 (200)" in text  # length-only; pairs (items)
    assert "What this run can show" in text and "40 items in its smallest" in text
    assert "about ±15 points" in text  # the old 40-pair results are the smallest
    # the old-format results (no intervals): an approximate Wilson interval, never coloured
    assert "61.0% <small>≈[" in text and 'class="good">61.0%' not in text
    # uniform-guess line on the pretraining loss (ln 103 = 4.63), not on DPO's
    assert text.count("uniform guess: ln 103 = 4.63") == 1
    assert "loss (= dpo_loss)" in text  # the two identical DPO series are drawn once
    assert "DPO reward accuracy" in text and "heldout_reward_accuracy" in text
    # generations: reference beside the ASR text, Auto-BLEU, players showing their duration
    assert "Once upon a" in text and "the story went on: time there" in text
    assert "once upon a" in text and "Auto-BLEU</b> 12.5%" in text and "GenPPL" in text
    assert 'preload="none"' not in text and text.count('preload="metadata"') == 2
    assert "prompt 1: sSC/0_correct" in text
