"""slam synth stories: files, manifest, determinism, resume after a kill."""

from __future__ import annotations

import json
import shutil

import numpy as np
import soundfile as sf

from slamlm.cli import main
from slamlm.io import read_jsonl
from slamlm.synth.corpus import SynthConfig, run_synth
from slamlm.synth.stories import story_text


def _manifest(d):
    return list(read_jsonl(d / "manifest.jsonl"))


def test_cli_stories_two_workers(tmp_path):
    out = tmp_path / "c"
    rc = main(["-q", "synth", "stories", "--n", "6", "--voices", "en-us,en-us+f3",
               "--out", str(out), "--seed", "5", "--workers", "2"])
    assert rc == 0
    recs = _manifest(out)
    assert [r["id"] for r in recs] == [f"story_{i:07d}" for i in range(6)]
    for i, r in enumerate(recs):
        assert r["text"] == story_text(i, seed=5)
        assert r["voice"] in ("en-us", "en-us+f3")
        info = sf.info(str(out / r["path"]))
        assert info.samplerate == 16000 and info.format == "FLAC"
        assert abs(info.frames / 16000 - r["duration"]) < 1e-3
        assert len(r["words"]) == len(r["text"].replace('"', " ").split())
        assert all(0 <= s < e <= r["duration"] for _, s, e in r["words"])
    assert (out / "config.yaml").is_file() and not (out / "manifest.partial.jsonl").exists()


def test_user_text_and_resume_after_kill(tmp_path):
    txt = tmp_path / "mine.txt"
    txt.write_text("The first little story.\n\nA second one, quite short.\n\nThird and last.\n")
    out = tmp_path / "u"
    cfg = SynthConfig(out=str(out), n=0, text=str(txt), workers=1, voices=("en-us",))
    run_synth(cfg)
    full = _manifest(out)
    assert [r["text"] for r in full] == ["The first little story.", "A second one, quite short.",
                                         "Third and last."]
    audio = {r["id"]: sf.read(str(out / r["path"]))[0] for r in full}
    # simulate a kill: manifest not finalised, a partial last line, one record's audio missing
    (out / "manifest.jsonl").unlink()
    lines = [json.dumps(full[0]), json.dumps(full[1]), json.dumps(full[1])[:40]]
    (out / "manifest.partial.jsonl").write_text("\n".join(lines))
    (out / full[2]["path"]).unlink()
    run_synth(cfg)
    again = _manifest(out)
    assert [r["id"] for r in again] == [r["id"] for r in full]  # no duplicates, none missing
    for r in again:
        assert np.array_equal(sf.read(str(out / r["path"]))[0], audio[r["id"]])


def test_same_seed_identical_text_and_audio(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    run_synth(SynthConfig(out=str(a), n=3, seed=11, workers=1))
    run_synth(SynthConfig(out=str(b), n=3, seed=11, workers=1))
    assert (a / "manifest.jsonl").read_bytes() == (b / "manifest.jsonl").read_bytes()
    for r in _manifest(a):
        assert (a / r["path"]).read_bytes() == (b / r["path"]).read_bytes()
    shutil.rmtree(b)
    run_synth(SynthConfig(out=str(b), n=3, seed=12, workers=1))
    assert (a / "manifest.jsonl").read_bytes() != (b / "manifest.jsonl").read_bytes()
