"""Hostile inputs across stages. Each case asserts a clear error naming the input (path, line
or key) and the fix, or skip-and-report into failures.jsonl, and that outputs already written
are byte-for-byte unchanged."""

from __future__ import annotations

import errno
import json
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from reliability_helpers import speechlike_wav, tree_hashes

import slamlm.io as sio
from slamlm.cli import main
from slamlm.io import FailureLog, ManifestError, read_jsonl
from slamlm.units.runner import UnitsConfig, run_units


# ---------------------------------------------------------------- audio through `slam units`
@pytest.fixture(scope="module")
def units_base(tmp_path_factory) -> dict[str, Path]:
    """Two good wavs, a mel k-means and a finished units folder made from them."""
    from slamlm.units.fit import FitConfig, run_fit_kmeans

    d = tmp_path_factory.mktemp("hostile_units")
    for i in range(2):
        speechlike_wav(d / "in" / f"good{i}.wav", 1.5, seed=i)
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        km = run_fit_kmeans(FitConfig(input=str(d / "in"), out=str(d / "km.safetensors"), k=8))
        run_units(UnitsConfig(input=str(d / "in"), out=str(d / "out"), kmeans=str(km),
                              num_workers=0))
    finally:
        torch.set_num_threads(n)
    return {"in": d / "in", "out": d / "out", "km": Path(km)}


def _wav_header_lie(p: Path) -> None:
    """A 1 s PCM WAV whose RIFF/data sizes claim ~2 GiB."""
    pcm = (0.1 * np.sin(np.arange(16000) / 7) * 32767).astype("<i2").tobytes()
    hdr = (b"RIFF" + struct.pack("<I", 0x7FFFFFF0) + b"WAVE" + b"fmt "
           + struct.pack("<IHHIIHH", 16, 1, 1, 16000, 32000, 2, 16)
           + b"data" + struct.pack("<I", 0x7FFFFFE0))
    p.write_bytes(hdr + pcm)


def _nan_wav(p: Path) -> None:
    x = np.full(16000, 0.1, np.float32)
    x[100:200] = np.nan
    sf.write(p, x, 16000, subtype="FLOAT")


def _truncated(p: Path) -> None:
    """A FLAC cut at a third (a cut WAV just decodes shorter: libsndfile trusts the file size)."""
    flac = speechlike_wav(p.with_suffix(".flac"), 2.0)
    data = flac.read_bytes()
    flac.unlink()
    p.write_bytes(data[: len(data) // 3])


def _flac_named_wav(p: Path) -> None:
    speechlike_wav(p.with_suffix(".flac"), 1.0, seed=5)
    p.with_suffix(".flac").rename(p)


# name -> (writer(path), expected failure reason substring or None for a good record, frames)
AUDIO_CASES = {
    "empty_file": (lambda p: p.write_bytes(b""), "empty file (0 bytes)", None),
    "text_not_audio": (lambda p: p.write_text("hello\n"), "not a readable audio file", None),
    "truncated": (_truncated, "truncated", None),
    "header_no_samples": (lambda p: sf.write(p, np.zeros(0, np.float32), 16000),
                          "contains no audio samples", None),
    "nan_samples": (_nan_wav, "NaN or infinite samples", None),
    "too_short": (lambda p: speechlike_wav(p, 0.01), "too short", None),
    "rate_1hz": (lambda p: sf.write(p, np.zeros(64, np.float32) + 0.1, 1),
                 "sample rate 1 Hz is below 2000 Hz", None),
    "rate_8k": (lambda p: speechlike_wav(p, 2.0, sr=8000), None, 50),
    "rate_48k": (lambda p: speechlike_wav(p, 2.0, sr=48000), None, 50),
    "rate_22050": (lambda p: speechlike_wav(p, 2.0, sr=22050), None, 50),
    "stereo": (lambda p: speechlike_wav(p, 2.0, channels=2), None, 50),
    "six_channels": (lambda p: speechlike_wav(p, 2.0, channels=6), None, 50),
    "header_claims_2gib": (_wav_header_lie, None, 25),
    "flac_named_wav": (_flac_named_wav, None, 25),
}


@pytest.mark.parametrize("case", sorted(AUDIO_CASES))
def test_hostile_audio_in_slam_units(case, units_base, tmp_path):
    write, reason, frames = AUDIO_CASES[case]
    src, out = tmp_path / "in", tmp_path / "out"
    shutil.copytree(units_base["in"], src)
    shutil.copytree(units_base["out"], out)
    old = (out / "units.jsonl").read_bytes()
    write(src / f"{case}.wav")
    run_units(UnitsConfig(input=str(src), out=str(out), kmeans=str(units_base["km"]),
                          num_workers=0))
    assert (out / "units.jsonl").read_bytes().startswith(old)  # earlier records untouched
    recs = {r["id"]: r for r in read_jsonl(out / "units.jsonl")}
    fails = {r["id"]: r for r in read_jsonl(out / "failures.jsonl")} if (
        out / "failures.jsonl").exists() else {}
    if reason is None:
        assert case in recs and case not in fails
        assert recs[case]["n_frames"] == frames and sum(recs[case]["durations"]) == frames
    else:
        assert case not in recs and reason in fails[case]["reason"]
        assert fails[case]["path"].endswith(f"{case}.wav")  # names the file
    summary = json.loads((out / "summary.json").read_text())
    assert summary["records"] == len(recs) == 2 + (reason is None)


def test_strict_units_stops_on_the_bad_file(units_base, tmp_path):
    src = tmp_path / "in"
    shutil.copytree(units_base["in"], src)
    (src / "bad.wav").write_text("nope")
    with pytest.raises(ValueError, match=r"bad.wav: not a readable audio file"):
        run_units(UnitsConfig(input=str(src), out=str(tmp_path / "o"), kmeans=str(units_base["km"]),
                              num_workers=0, strict=True))


def test_kmeans_of_another_encoder_is_refused(units_base, tmp_path):
    from slamlm.units.kmeans import KMeans, save_kmeans

    other = save_kmeans(KMeans(torch.randn(8, 768), encoder="hubert:some/model", layer=11),
                        tmp_path / "hub.safetensors")
    out = tmp_path / "out"
    shutil.copytree(units_base["out"], out)
    before = tree_hashes(out)
    with pytest.raises(ValueError, match=r"hubert:some/model layer 11 dim 768.*mel dim 80"):
        run_units(UnitsConfig(input=str(units_base["in"]), out=str(out), kmeans=str(other),
                              num_workers=0))
    assert tree_hashes(out) == before


# ------------------------------------------------------------------------- JSONL manifests
UNITS_MANIFEST = {
    "bad_json": ('{"path": "good0.wav"}\n{"path": oops}\n', r"line 2: not valid JSON"),
    "missing_path": ('{"id": "a", "file": "good0.wav"}\n', r"line 1: record has no 'path'"),
    "path_wrong_type": ('{"path": 5}\n', r"line 1: 'path' must be a non-empty string"),
    "not_an_object": ('["good0.wav"]\n', r"line 1: expected a JSON object, got list"),
}


@pytest.mark.parametrize("case", sorted(UNITS_MANIFEST))
def test_malformed_units_manifest(case, units_base, tmp_path):
    text, msg = UNITS_MANIFEST[case]
    man = tmp_path / "manifest.jsonl"
    man.write_text(text)
    rc, err = _slam(["units", str(man), "--out", str(tmp_path / "o"), "--kmeans",
                     str(units_base["km"])])
    assert rc == 1 and "manifest.jsonl" in err and _search(msg, err)
    assert not (tmp_path / "o" / "units.jsonl").exists()


TRIPLET_LINES = {
    "bad_json": ("{not json", "not valid JSON"),
    "missing_fields": ('{"id": "m", "prompt_units": [1, 2]}', "needs prompt_/chosen_/rejected_units"),
    "units_wrong_type": ('{"id": "w", "prompt_units": "abc", "chosen_units": [1], '
                         '"rejected_units": [2]}', "line 2"),
    "unit_out_of_range": ('{"id": "o", "prompt_units": [1], "chosen_units": [999], '
                          '"rejected_units": [2]}', "999"),
    "missing_audio": ('{"id": "a", "prompt_path": "p.wav", "chosen_path": "c.wav", '
                      '"rejected_path": "r.wav"}', "audio file(s) not found"),
}


@pytest.mark.parametrize("case", sorted(TRIPLET_LINES))
def test_malformed_dpo_triplets_go_to_failures(case, tmp_path):
    from slamlm.align.data import load_triplets
    from slamlm.vocab import UnitVocab

    line, msg = TRIPLET_LINES[case]
    good = json.dumps({"id": "g", "prompt_units": [1, 2], "chosen_units": [3, 4],
                       "rejected_units": [5, 6]})
    path = tmp_path / "triplets.jsonl"
    path.write_text(good + "\n" + line + "\n" + good.replace('"g"', '"h"') + "\n")
    log = FailureLog(tmp_path / "failures.jsonl", stage="dpo")
    pairs, summary = load_triplets(path, UnitVocab(n_units=20), failures=log)
    assert [p.id for p in pairs] == ["g", "h"] and summary.n_failed == 1
    (fail,) = list(read_jsonl(tmp_path / "failures.jsonl"))
    assert "triplets.jsonl line 2" in fail["reason"] and msg in fail["reason"]
    with pytest.raises(ValueError, match="triplets.jsonl line 2"):  # strict: no failure log
        load_triplets(path, UnitVocab(n_units=20))


PAIRS_LINES = {
    "bad_json": ('{"id": 1, "positive": [1], ', r"line 1: not valid JSON"),
    "missing_negative": ('{"id": "x", "positive": [1, 2]}', r"record 1: missing field 'negative'"),
    "group_not_object": ('{"id": "x", "positive": [1], "negative": [2], "group": 3}',
                         r"record 1: group must be an object"),
    "missing_audio": ('{"id": "x", "positive": "a.wav", "negative": [2]}',
                      r"record 1 positive: audio file .*a.wav does not exist"),
}


@pytest.mark.parametrize("case", sorted(PAIRS_LINES))
def test_malformed_pairs_manifest(case, tmp_path):
    from slamlm.eval.readers import read_benchmark

    line, msg = PAIRS_LINES[case]
    (tmp_path / "pairs.jsonl").write_text(line + "\n" + '{"id": "ok", "positive": [1], '
                                          '"negative": [2]}\n')
    with pytest.raises(ManifestError, match=msg):
        read_benchmark(tmp_path)


@pytest.mark.parametrize("line,msg", [
    ('{"txt": "hi"}', r"record 1: needs a non-empty \"text\" field"),
    ('{"text": 42}', r"record 1: needs a non-empty \"text\" field"),
    ('{"text": "ok"}\n{bad', r"line 2: not valid JSON"),
])
def test_malformed_synth_text(line, msg, tmp_path):
    (tmp_path / "mine.jsonl").write_text(line + "\n")
    rc, err = _slam(["synth", "stories", "--text", str(tmp_path / "mine.jsonl"), "--out",
                     str(tmp_path / "o"), "--workers", "1"])
    assert rc == 1 and "mine.jsonl" in err and _search(msg, err)
    assert not (tmp_path / "o" / "manifest.jsonl").exists()


# --------------------------------------------------------------------------------- pack
PACK_RECORDS = {
    "unit_out_of_range": ({"id": "bad", "units": [1, 2, 731]}, "731"),
    "units_not_a_list": ({"id": "bad", "units": "1 2 3"}, "no 'units' list"),
    "units_empty": ({"id": "bad", "units": []}, "empty 'units' list"),
    "units_missing": ({"id": "bad", "frames": [1]}, "no 'units' list"),
}


@pytest.mark.parametrize("case", sorted(PACK_RECORDS))
def test_bad_records_in_slam_pack(case, tmp_path):
    from slamlm.data import PackConfig, run_pack
    from slamlm.data.synthetic import synthetic_records
    from slamlm.io import write_jsonl

    rec, msg = PACK_RECORDS[case]
    good = synthetic_records(6, k=40, mean_len=20, seed=0)
    write_jsonl(tmp_path / "units" / "part.jsonl", good[:3] + [rec] + good[3:])
    out = run_pack(PackConfig(units=tmp_path / "units", out=tmp_path / "tok", n_units=40,
                              context=16, val_fraction=0.2))
    index = json.loads((out / "index.json").read_text())
    assert index["n_failures"] == 1
    assert sum(s["n_docs"] for s in index["splits"].values()) >= 6
    (fail,) = list(read_jsonl(tmp_path / "tok_failures.jsonl"))
    assert fail["id"] == "bad" and "line 4" in fail["reason"] and msg in fail["reason"]
    with pytest.raises(ValueError, match="line 4"):
        run_pack(PackConfig(units=tmp_path / "units", out=tmp_path / "tok2", n_units=40,
                            context=16, strict=True))
    assert not (tmp_path / "tok2").exists()


# ------------------------------------------------------------------------------- configs
@pytest.mark.parametrize("override,msg", [
    ("train.learning_rate=1e-3", "learning_rate"),
    ("train.lr=fast", "train.lr: expected a number, got 'fast'"),
    ("train.max_steps=1.5", "train.max_steps: expected an integer"),
    ("train.precision=fp8", "train.precision: 'fp8' is not one of"),
    ("trian.lr=1e-3", "trian"),
])
def test_bad_config_overrides(override, msg, tmp_path):
    rc, err = _slam(["pretrain", "--tokens", str(tmp_path / "t"), "--out", str(tmp_path / "r"),
                     "--set", override])
    assert rc == 1 and msg in err
    assert not (tmp_path / "r").exists()


# ---------------------------------------------------------------------------- benchmarks
def _wav(p: Path, seed: int = 0) -> Path:
    return speechlike_wav(p, 0.3, seed=seed)


def test_storycloze_unpaired_file(tmp_path):
    from slamlm.eval.readers import read_benchmark

    _wav(tmp_path / "0_correct.wav")
    _wav(tmp_path / "0_wrong.wav", 1)
    _wav(tmp_path / "1_correct.wav", 2)
    with pytest.raises(ManifestError, match=r"1_correct.wav: unpaired StoryCloze file"):
        read_benchmark(tmp_path)


def test_salmon_unpaired_file(tmp_path):
    from slamlm.eval.readers import read_benchmark

    _wav(tmp_path / "gender_consistency" / "sample_0_0.wav")
    _wav(tmp_path / "gender_consistency" / "sample_0_1.wav", 1)
    _wav(tmp_path / "gender_consistency" / "sample_1_0.wav", 2)
    with pytest.raises(ManifestError, match=r"sample_1_0.wav: unpaired SALMon file "
                                            r"\(sample_1_1 is missing\)"):
        read_benchmark(tmp_path)


def test_gold_csv_missing_a_column(tmp_path):
    from slamlm.eval.readers import read_benchmark

    d = tmp_path / "lexical" / "dev"
    _wav(d / "a.wav")
    (d / "gold.csv").write_text("id,filename,voice,frequency,word,phones,length\n1,a,v,1,w,p,1\n")
    with pytest.raises(ManifestError, match=r"gold.csv: missing column 'correct'"):
        read_benchmark(tmp_path, name="swuggy")


# ------------------------------------------------------------------ checkpoints and folders
def test_checkpoint_vocabulary_mismatch(tmp_path):
    from slamlm.config import build_config
    from slamlm.data import PackConfig, run_pack
    from slamlm.data.synthetic import write_synthetic_units
    from slamlm.train import PretrainConfig, run_pretrain

    def tokens(k: int) -> Path:
        write_synthetic_units(tmp_path / f"u{k}", 20, k=k, mean_len=20, seed=0)
        return run_pack(PackConfig(units=tmp_path / f"u{k}", out=tmp_path / f"t{k}", n_units=k,
                                   context=16, val_fraction=0.2))

    def cfg(tok: Path, out: str, init: str | None = None) -> PretrainConfig:
        return build_config(PretrainConfig, base={
            "out": str(tmp_path / out), "device": "cpu", "model": {"init": init},
            "data": {"tokens": str(tok), "context": 16},
            "train": {"batch_size": 2, "micro_batch": 2, "max_steps": 1, "budget": None, "warmup_steps": 0,
                      "eval_every": 0}})

    small = run_pretrain(cfg(tokens(10), "small"))
    before = tree_hashes(small)
    with pytest.raises(ValueError, match=r"t40: tokens use a vocabulary of 43 but the model "
                                         r"has 13 rows: pack with the model's n_units"):
        run_pretrain(cfg(tokens(40), "big", init=str(small)))
    assert tree_hashes(small) == before


@pytest.mark.parametrize("argv,msg", [
    (["units", "{d}", "--out", "{o}"], "{d}: no audio files found"),
    (["pack", "{d}", "--out", "{o}"], "{d}: no *.jsonl, *.jsonl.gz, *.parquet or *.hf units files found"),
    (["eval", "--bench", "b={d}", "--out", "{o}", "{d}"], "{d}: unknown benchmark layout"),
])
def test_empty_input_folder(argv, msg, tmp_path):
    d, o = tmp_path / "empty", tmp_path / "out"
    d.mkdir()
    rc, err = _slam([a.format(d=d, o=o) for a in argv])
    assert rc == 1 and msg.format(d=d) in err
    assert not (o / "units.jsonl").exists() and not (o / "index.json").exists()


# ------------------------------------------------------------------------------ disk full
def _enospc_after(monkeypatch, n_bytes: int) -> None:
    """Files opened by slamlm.io accept ``n_bytes`` then raise OSError(ENOSPC)."""
    real_open = open

    class Full:
        def __init__(self, f):
            self.f, self.left = f, n_bytes

        def write(self, data):
            if len(data) > self.left:
                self.f.write(data[: self.left])
                self.f.flush()
                self.left = 0
                raise OSError(errno.ENOSPC, "No space left on device")
            self.left -= len(data)
            return self.f.write(data)

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    monkeypatch.setattr(sio, "open", lambda *a, **k: Full(real_open(*a, **k)), raising=False)


def test_disk_full_in_atomic_write_keeps_the_old_file(tmp_path, monkeypatch):
    target = sio.write_jsonl(tmp_path / "data.jsonl", [{"id": i} for i in range(50)])
    before = target.read_bytes()
    _enospc_after(monkeypatch, 100)
    with pytest.raises(OSError, match="No space left"):
        sio.write_jsonl(target, [{"id": i, "new": True} for i in range(50)])
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.jsonl"]  # no half temp file


def test_disk_full_while_appending_units_then_resume(units_base, tmp_path, monkeypatch):
    src, out = tmp_path / "in", tmp_path / "out"
    shutil.copytree(units_base["in"], src)
    for i in range(4):
        speechlike_wav(src / f"more{i}.wav", 1.0, seed=10 + i)
    cfg = UnitsConfig(input=str(src), out=str(out), kmeans=str(units_base["km"]), num_workers=0)
    run_units(UnitsConfig(input=str(src), out=str(tmp_path / "ref"), kmeans=str(units_base["km"]),
                          num_workers=0))
    ref = {r["id"]: r for r in read_jsonl(tmp_path / "ref" / "units.jsonl")}
    first = (tmp_path / "ref" / "units.jsonl").read_bytes().split(b"\n")
    _enospc_after(monkeypatch, len(first[0]) + len(first[1]) + 2 + 40)  # 2 records + a bit
    with pytest.raises(OSError, match="No space left"):
        run_units(cfg)
    written = (out / "units.jsonl").read_bytes()
    assert not written.endswith(b"\n") and written.count(b"\n") == 2  # a partial third line
    assert not (out / "summary.json").exists()
    monkeypatch.undo()
    run_units(cfg)  # space is back: resume
    ids = [r["id"] for r in read_jsonl(out / "units.jsonl")]
    assert len(ids) == len(set(ids)) == 6
    assert {r["id"]: r for r in read_jsonl(out / "units.jsonl")} == ref
    assert (out / "units.jsonl").read_bytes().startswith(written[: written.rfind(b"\n") + 1])


def test_disk_full_while_saving_a_checkpoint(tmp_path, monkeypatch):
    from slamlm.config import build_config
    from slamlm.data import PackConfig, run_pack
    from slamlm.data.synthetic import write_synthetic_units
    from slamlm.train import PretrainConfig, run_pretrain
    from slamlm.train.checkpoint import find_latest

    write_synthetic_units(tmp_path / "u", 20, k=10, mean_len=20, seed=0)
    tok = run_pack(PackConfig(units=tmp_path / "u", out=tmp_path / "t", n_units=10, context=16,
                              val_fraction=0.2))

    def cfg(steps: int) -> PretrainConfig:
        return build_config(PretrainConfig, base={
            "out": str(tmp_path / "run"), "device": "cpu", "data": {"tokens": str(tok), "context": 16},
            "train": {"batch_size": 2, "micro_batch": 2, "max_steps": steps, "budget": None, "warmup_steps": 0,
                      "eval_every": 0, "ckpt_every": 2, "keep_last": 1}})

    run_pretrain(cfg(2))
    ckpt = tmp_path / "run" / "ckpt"
    before = tree_hashes(ckpt)
    real_save = torch.save

    def full_save(obj, f, *a, **k):
        real_save(obj, f, *a, **k)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full_save)
    with pytest.raises(OSError, match="No space left"):
        run_pretrain(cfg(4))
    assert tree_hashes(ckpt) == before  # step 2 intact, no step_4, no temp folder
    monkeypatch.undo()
    assert run_pretrain(cfg(4)).name == "step_00000004" and find_latest(ckpt).name == "step_00000004"


# ------------------------------------------------------------------------------- helpers
def _slam(argv: list[str]) -> tuple[int, str]:
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            rc = main(["-q", *argv])
        except SystemExit as e:  # argparse usage errors
            rc = int(e.code or 0)
    return rc, err.getvalue()


def _search(pattern: str, text: str) -> bool:
    import re

    return re.search(pattern, text) is not None
