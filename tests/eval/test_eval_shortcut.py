"""Shortcut control: shuffled units keep lengths and histograms, lose the order."""

import gzip
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from slamlm.eval.shortcut import shuffle_record, shuffle_units_dir
from slamlm.io import read_jsonl

ROOT = Path(__file__).resolve().parents[2]


def _units_dir(root: Path) -> Path:
    d = root / "units"
    d.mkdir()
    recs = [{"id": f"story_{i}", "units": list(range(i, i + 40)), "durations": [1, 2] * 20,
             "n_frames": 60, "sr": 16000} for i in range(5)]
    (d / "units.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    with gzip.open(d / "more.jsonl.gz", "wt") as f:
        f.write(json.dumps({"id": "x", "units": [7, 8, 9, 7], "durations": [1, 1, 1, 3]}) + "\n")
    (d / "failures.jsonl").write_text(json.dumps({"id": "bad", "error": "x"}) + "\n")
    (d / "identity.json").write_text(json.dumps({"encoder": "mel", "k": 100}))
    return d


def test_shuffled_copy_keeps_lengths_and_histograms(tmp_path):
    src = _units_dir(tmp_path)
    dst = shuffle_units_dir(src, tmp_path / "shuffled", seed=3)
    for name in ("units.jsonl", "more.jsonl.gz"):
        before, after = list(read_jsonl(src / name)), list(read_jsonl(dst / name))
        assert [r["id"] for r in before] == [r["id"] for r in after]
        for a, b in zip(before, after):
            assert Counter(a["units"]) == Counter(b["units"]) and len(a["units"]) == len(b["units"])
            assert Counter(zip(a["units"], a["durations"])) == Counter(zip(b["units"], b["durations"]))
            assert sum(b["durations"]) == sum(a["durations"])
    changed = [a["units"] != b["units"] for a, b in zip(read_jsonl(src / "units.jsonl"),
                                                        read_jsonl(dst / "units.jsonl"))]
    assert all(changed)  # 40 distinct units: a shuffle that keeps the order is ~impossible
    assert (dst / "identity.json").read_text() == (src / "identity.json").read_text()
    assert (dst / "failures.jsonl").is_file()  # copied as is, not treated as units
    assert json.loads((dst / "shuffled.json").read_text())["documents"] == 6
    again = shuffle_units_dir(src, tmp_path / "again", seed=3)  # deterministic
    assert (again / "units.jsonl").read_bytes() == (dst / "units.jsonl").read_bytes()


def test_shuffle_record_depends_on_id_and_seed_only():
    rec = {"id": "a", "units": list(range(30)), "durations": [1] * 30}
    assert shuffle_record(rec, 1) == shuffle_record(dict(rec), 1)
    assert shuffle_record(rec, 1)["units"] != shuffle_record(rec, 2)["units"]
    with pytest.raises(FileNotFoundError):
        shuffle_units_dir("/nonexistent/units", "/tmp/x")


def _check(tmp_path, benchmarks):
    res = tmp_path / "results.json"
    res.write_text(json.dumps({"benchmarks": benchmarks}))
    return subprocess.run([sys.executable, str(ROOT / "bench/shortcut_control.py"), "--check",
                           str(res)], capture_output=True, text=True)


def test_check_flags_off_chance(tmp_path):
    run = _check(tmp_path, {
        "swuggy": {"accuracy": 0.52, "ci95": [0.45, 0.59], "n_keys": 200},
        "sblimp": {"accuracy": 0.70, "ci95": [0.63, 0.76], "n_keys": 200}})
    assert run.returncode == 1
    assert "swuggy" in run.stdout and "at chance" in run.stdout and "OFF CHANCE" in run.stdout


def test_check_shows_salmon_but_does_not_count_it(tmp_path):
    """SALMon's consistency pairs are order-free: units that keep the voice pass them shuffled."""
    run = _check(tmp_path, {
        "swuggy": {"accuracy": 0.52, "ci95": [0.45, 0.59], "n_keys": 200},
        "salmon": {"accuracy": 0.70, "ci95": [0.63, 0.76], "n_keys": 200, "kind": "salmon"}})
    assert run.returncode == 0, run.stdout
    assert "OFF CHANCE" not in run.stdout
    assert "salmon" in run.stdout and "not counted" in run.stdout
