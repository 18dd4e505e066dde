"""bench/scale.py --quick: every stage at two sizes, real CLI subprocesses, a growth table.

Asserts that the table is printed for every stage and size, and that the per-item cost of the
larger size stays under 3x that of the smaller one (a quadratic step would blow it up), with
peak RSS measured for each run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_scale_quick_table_and_linear_growth(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "src"),
                                                       os.environ.get("PYTHONPATH")]))}
    out = tmp_path / "rows.json"
    r = subprocess.run([sys.executable, str(REPO / "bench" / "scale.py"), "--quick",
                        "--json", str(out)], cwd=REPO, env=env, capture_output=True, text=True,
                       timeout=240)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "| stage | size | seconds | µs / item | peak RSS MB | growth ratio |" in r.stdout
    rows = json.loads(out.read_text())
    sizes = {(x["stage"], x["size"]) for x in rows}
    assert sizes == {("units", 300), ("units", 1500), ("pack", 20_000), ("pack", 100_000),
                     ("eval", 1000), ("eval", 6000)}
    for x in rows:
        assert x["seconds"] > 0 and x["rss_mb"] > 10
        assert f"| {x['stage']} | {x['size']:,} |" in r.stdout
        if x["growth"] is not None:
            assert x["growth"] < 3.0, f"{x['stage']}: per-item cost grew {x['growth']:.2f}x"
    pack = {x["size"]: x["rss_mb"] for x in rows if x["stage"] == "pack"}
    # streamed: flat (37 -> 39 MB measured; 47 -> 97 MB when read_jsonl read whole files)
    assert pack[100_000] < pack[20_000] + 25, f"pack memory grows with the records: {pack}"
