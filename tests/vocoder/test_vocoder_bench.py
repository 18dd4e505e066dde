"""bench/vocoder_quality.py --quick: every row and every measure on the tiny corpus."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(importlib.util.find_spec("torchcrepe") is None,
                    reason="torchcrepe not installed (make setup-test installs it)")
def test_bench_quick(tiny_units, tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "src"),
                                                       os.environ.get("PYTHONPATH")]))}
    r = subprocess.run([sys.executable, str(REPO / "bench/vocoder_quality.py"), "--quick",
                        "--units", str(tiny_units), "--out", str(tmp_path / "b"),
                        "--archs", "istft", "--minutes", "1"],
                       env=env, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    rows = json.loads((tmp_path / "b/results.json").read_text())
    names = [row["system"] for row in rows]
    assert names[:3] == ["original audio", "mel inverse (no weights)", "chance (shuffled units)"]
    assert names[3].startswith("istft 1 min (step 3)")
    for row in rows:
        assert 0 <= row["unit_agree"] <= 1 and row["wer"] >= 0
        assert row["f0_corr"] is None or -1 <= row["f0_corr"] <= 1
    orig = rows[0]
    assert orig["f0_corr"] > 0.95  # the original against itself
    assert orig["wer"] == 0.0  # without --manifest the reference is ASR of the original
    assert "| original audio" in r.stdout
