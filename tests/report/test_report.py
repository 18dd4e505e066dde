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
