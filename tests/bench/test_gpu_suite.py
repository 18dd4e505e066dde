"""bench/gpu_suite.py --dry-run: the whole suite's code on CPU with tiny shapes (~50 s).

Checks that the two outputs exist and that every part ran and measured positive numbers, so
the GPU session only has to run it (no GPU needed here; the CUDA branches are not exercised).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

PARTS = ["pytest", "train", "quality", "units", "eval", "generate"]


def test_gpu_suite_dry_run(tmp_path):
    out = tmp_path / "suite"
    env = {**os.environ, "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "src"),
                                                       os.environ.get("PYTHONPATH")]))}
    r = subprocess.run([sys.executable, str(REPO / "bench" / "gpu_suite.py"), "--dry-run",
                        "--out", str(out)], cwd=REPO, env=env, capture_output=True, text=True,
                       timeout=300)
    log = (out / "suite.log").read_text() if (out / "suite.log").is_file() else ""
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:] + log[-4000:]
    suite = json.loads((out / "suite.json").read_text())
    md = (out / "suite.md").read_text()
    assert suite["dry_run"] is True and list(suite["parts"]) == PARTS
    for name, part in suite["parts"].items():
        allowed = {"ok", "skipped"} if name == "pytest" else {"ok"}
        assert part["status"] in allowed, (name, part.get("error"))
        ok_rows = [row for row in part["rows"] if row["status"] == "ok"]
        assert ok_rows and all(row["metrics"] for row in ok_rows), (name, part["rows"])
        for row in ok_rows:
            for key, value in row["metrics"].items():
                assert isinstance(value, float) and math.isfinite(value) and value > 0, (
                    name, row["variant"], key, value)
        assert f"| {PARTS.index(name) + 1} {part['title']} | {part['status']} |" in md
    train = {row["variant"][:3]: row for row in suite["parts"]["train"]["rows"]}
    assert {"(a)", "(b)", "(c)"} <= set(train)
    assert {"c_over_a", "c_over_b"} <= set(suite["parts"]["train"]["rows"][-1]["metrics"])
    quality = suite["parts"]["quality"]["rows"]
    assert [row["variant"][:3] for row in quality] == ["(c)", "(a)"]
    # the same init: both start from the same validation loss
    assert abs(quality[0]["info"]["val_loss_init"] - quality[1]["info"]["val_loss_init"]) < 1e-3
