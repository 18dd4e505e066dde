"""SIGKILL `slam synth stories` mid-run 3 times; resume: each id once, every audio file decodes."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import soundfile as sf
from reliability_helpers import kill_when, run_slam

from slamlm.io import read_jsonl
from slamlm.synth.stories import story_text

N = 10


def n_lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


@pytest.mark.slow
def test_synth_stories_survive_sigkills(tmp_path):
    out = tmp_path / "synth"
    partial = out / "manifest.partial.jsonl"
    args = ["synth", "stories", "--n", str(N), "--out", str(out), "--seed", "3",
            "--voices", "en-us", "--workers", "1"]
    rng = random.Random(11)
    kills = 0
    for _ in range(3):
        before = n_lines(partial)
        killed = kill_when(args, lambda b=before: n_lines(partial) >= b + 1,
                           delay=rng.uniform(0, 0.05))
        if killed and not (out / "manifest.jsonl").exists():
            kills += 1
            # what was recorded so far points at complete audio files
            for r in read_jsonl(partial):
                assert sf.info(str(out / r["path"])).frames > 0
    assert kills >= 2, f"only {kills} kills landed mid-run"
    done = run_slam(*args)
    assert done.returncode == 0, done.stderr[-3000:]
    recs = list(read_jsonl(out / "manifest.jsonl"))
    assert [r["id"] for r in recs] == [f"story_{i:07d}" for i in range(N)]
    for i, r in enumerate(recs):
        assert r["text"] == story_text(i, seed=3)
        wav, sr = sf.read(str(out / r["path"]))
        assert sr == 16000 and abs(len(wav) / sr - r["duration"]) < 1e-3 and abs(wav).max() > 0.01
    assert not partial.exists()
    audio = {p.relative_to(out).as_posix() for p in (out / "audio").rglob("*") if p.is_file()
             and not p.name.startswith(".")}
    assert audio == {r["path"] for r in recs}, "audio files not in the manifest (or missing)"
