"""`slam units extract` end to end: real audio, bad files, re-run, kill-resume, shards."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch

from slamlm.cli import _default_subcommand, build_parser
from slamlm.io import CutLineError, FailureLog, read_jsonl, write_jsonl
from slamlm.units.extractor import UnitExtractor
from slamlm.units.runner import (
    UnitsConfig,
    list_inputs,
    parse_shard,
    plan_batches,
    read_units,
    run_units,
    shard_of,
)


def slam_units(*argv: str) -> int:
    """``slam units ARGV`` in-process (errors propagate, as a library call would)."""
    argv_ = _default_subcommand(["units", *argv])
    args = build_parser(argv_).parse_args(argv_)
    return args.func(args)


@pytest.fixture(scope="module")
def kmeans16(tmp_path_factory, peer_example_dir):
    out = tmp_path_factory.mktemp("km") / "km16.safetensors"
    slam_units("fit-kmeans", str(peer_example_dir), "--out", str(out), "--k", "16")
    return out


def speechlike(path, seconds, sr=16000, channels=1, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    x = 0.2 * np.sin(2 * np.pi * (150 + 100 * np.sin(3 * t)) * t) + 0.02 * rng.standard_normal(t.size)
    x = x.astype(np.float32)
    sf.write(path, np.stack([x, 0.5 * x], 1) if channels == 2 else x, sr)
    return path


def test_slam_units_on_real_peer_audio(tmp_path, peer_example_dir):
    out = tmp_path / "u"
    assert slam_units(str(peer_example_dir), "--out", str(out), "--k", "16",
                      "--num-workers", "0") == 0  # no sub-subcommand: extract, fits k-means
    recs = {r["id"]: r for r in read_units(out)}
    assert sorted(recs) == ["audio1", "audio2"]
    assert recs["audio1"]["n_frames"] == 352 and recs["audio2"]["n_frames"] == 398
    for r in recs.values():
        assert sum(r["durations"]) == r["n_frames"]
        assert max(r["units"]) < 16 and min(r["units"]) >= 0
        assert all(a != b for a, b in zip(r["units"], r["units"][1:]))  # deduplicated
        assert len(set(r["units"])) > 4  # real speech uses many units
        assert r["encoder"] == "mel" and r["sr"] == 16000
    kms = list(out.glob("kmeans-*.safetensors"))
    assert len(kms) == 1 and kms[0].name == f"kmeans-{recs['audio1']['kmeans_hash']}.safetensors"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["records"] == 2 and summary["failed"] == 0
    assert summary["audio_hours"] == pytest.approx((14.085 + 15.945) / 3600, rel=1e-3)
    assert "kmeans: " + str(kms[0]) in (out / "config.yaml").read_text()
    # the fit encoded both files: their units came from those features, and are the units a
    # run given that k-means (which encodes every file in batches) makes
    again = tmp_path / "again"
    assert slam_units(str(peer_example_dir), "--out", str(again), "--kmeans", str(kms[0]),
                      "--num-workers", "0") == 0
    assert {r["id"]: r for r in read_units(again)} == recs


def test_features_the_fit_encoded_are_assigned_not_encoded_again(tmp_path, peer_example_dir,
                                                                 monkeypatch):
    calls = []
    real = UnitExtractor.features

    def counting(self, wavs):
        calls.append(len(wavs))
        return real(self, wavs)

    monkeypatch.setattr(UnitExtractor, "features", counting)
    assert slam_units(str(peer_example_dir), "--out", str(tmp_path / "u"), "--k", "8",
                      "--num-workers", "0") == 0
    assert sum(calls) == 2  # each file encoded once, by the fit
    assert len(list(read_units(tmp_path / "u"))) == 2


def test_bad_files_are_logged_and_rerun_changes_nothing(tmp_path, peer_example_dir, kmeans16):
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(peer_example_dir / "audio1.flac", src / "good.flac")
    speechlike(src / "stereo44k.wav", 2.0, sr=44100, channels=2)
    data = (peer_example_dir / "audio2.flac").read_bytes()
    (src / "truncated.flac").write_bytes(data[: len(data) // 3])
    (src / "empty.wav").write_bytes(b"")
    (src / "notes.wav").write_text("this is not audio\n")
    speechlike(src / "tiny.wav", 0.05)
    out = tmp_path / "out"
    argv = [str(src), "--out", str(out), "--kmeans", str(kmeans16), "--num-workers", "2"]
    assert slam_units("extract", *argv) == 0
    recs = {r["id"]: r for r in read_units(out)}
    assert sorted(recs) == ["good", "stereo44k"]
    assert recs["stereo44k"]["n_frames"] == 50  # 2 s resampled to 16 kHz -> 32000 // 640
    reasons = {r["id"]: r["reason"] for r in read_jsonl(out / "failures.jsonl")}
    assert sorted(reasons) == ["empty", "notes", "tiny", "truncated"]
    assert "empty file (0 bytes)" in reasons["empty"]
    assert "not a readable audio file" in reasons["notes"]
    assert "too short: 0.050 s" in reasons["tiny"]
    assert "truncated" in reasons["truncated"] or "corrupt" in reasons["truncated"]
    names = ["units.jsonl", "failures.jsonl", "summary.json", "config.yaml"]
    before = {n: (out / n).read_bytes() for n in names}
    assert slam_units("extract", *argv) == 0
    assert {n: (out / n).read_bytes() for n in names} == before
    with pytest.raises(ValueError, match="empty.wav: empty file"):
        run_units(UnitsConfig(input=str(src), out=str(tmp_path / "strict"), kmeans=str(kmeans16),
                              num_workers=0, strict=True))


def test_killed_run_resumes_without_duplicates(tmp_path, kmeans16):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(4):
        speechlike(src / f"f{i}.wav", 1.0 + 0.3 * i, seed=i)
    cfg = UnitsConfig(input=str(src), out=str(tmp_path / "out"), kmeans=str(kmeans16),
                      num_workers=0, batch_seconds=3.0)
    run_units(cfg)
    shard = tmp_path / "out" / "units.jsonl"
    full = {r["id"]: r for r in read_jsonl(shard)}
    lines = shard.read_bytes().split(b"\n")
    shard.write_bytes(b"\n".join(lines[:2]) + b"\n" + lines[2][: len(lines[2]) // 2])  # killed
    (tmp_path / "out" / "summary.json").unlink()
    run_units(cfg)
    ids = [r["id"] for r in read_jsonl(shard)]
    assert len(ids) == len(set(ids)) == 4
    assert {r["id"]: r for r in read_jsonl(shard)} == full
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["records"] == 4
    assert shard.read_bytes().endswith(b"\n")


def test_shards_split_ids_and_follow_torchrun_env(tmp_path, kmeans16, monkeypatch):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    for i in range(6):
        speechlike(src / ("sub" if i % 2 else "") / f"f{i}.wav", 0.5, seed=i)
    out = tmp_path / "out"
    got = []
    for rank in (0, 1):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", "2")
        run_units(UnitsConfig(input=str(src), out=str(out), kmeans=str(kmeans16), num_workers=0))
        got.append([r["id"] for r in read_jsonl(out / f"units-{rank}of2.jsonl")])
    assert set(got[0]).isdisjoint(got[1])
    assert sorted(got[0] + got[1]) == sorted(["f0", "sub/f1", "f2", "sub/f3", "f4", "sub/f5"])
    assert all(shard_of(i, 2) == 0 for i in got[0])
    assert len(list(read_units(out))) == 6
    assert parse_shard("1/4") == (1, 4)
    with pytest.raises(ValueError, match="expected i/n"):
        parse_shard("1-4")


def test_manifest_inputs_compress_and_identity(tmp_path, kmeans16):
    a = speechlike(tmp_path / "a.wav", 1.0, seed=1)
    b = speechlike(tmp_path / "b.wav", 1.5, seed=2)
    man = tmp_path / "m.jsonl"
    man.write_text(json.dumps({"path": "a.wav", "id": "spk1/a"}) + "\n"
                   + json.dumps({"path": str(b)}) + "\n")
    assert [(it.id, it.path) for it in list_inputs(man)] == [("spk1/a", str(tmp_path / "a.wav")),
                                                             ("b", str(b))]
    (tmp_path / "list.txt").write_text("a.wav\nb.wav\n")
    assert [it.id for it in list_inputs(tmp_path / "list.txt")] == ["a", "b"]
    out = tmp_path / "out"
    run_units(UnitsConfig(input=str(man), out=str(out), kmeans=str(kmeans16), num_workers=0,
                          compress=True))
    assert (out / "units.jsonl.gz").exists() and not (out / "units.jsonl").exists()
    recs = {r["id"]: r for r in read_units(out)}
    ex = UnitExtractor.from_identity({"encoder": "mel", "layer": 0, "kmeans_path": str(kmeans16),
                                      "kmeans_hash": recs["b"]["kmeans_hash"]})
    frames = ex.encode_paths([a])[0]
    assert np.repeat(recs["spk1/a"]["units"], recs["spk1/a"]["durations"]).tolist() == frames.tolist()
    assert ex.identity()["k"] == 16 and ex.identity()["dim"] == 80


def test_other_kmeans_in_same_output_is_refused(tmp_path, kmeans16, peer_example_dir):
    out = tmp_path / "out"
    src = tmp_path / "in"
    src.mkdir()
    speechlike(src / "x.wav", 1.0)
    run_units(UnitsConfig(input=str(src), out=str(out), kmeans=str(kmeans16), num_workers=0))
    other = tmp_path / "k4.safetensors"
    slam_units("fit-kmeans", str(peer_example_dir), "--out", str(other), "--k", "4")
    with pytest.raises(ValueError, match="holds units made with k-means"):
        run_units(UnitsConfig(input=str(src), out=str(out), kmeans=str(other), num_workers=0))


def test_plan_batches_respects_budget_longest_first():
    secs = [1.0, 5.0, 2.0, 2.0, 4.0]
    batches = plan_batches(secs, 8.0)
    assert sorted(i for b in batches for i in b) == [0, 1, 2, 3, 4]
    assert batches[0][0] == 1
    assert all(secs[b[0]] * len(b) <= 8.0 or len(b) == 1 for b in batches)


def test_hubert_encoder_through_the_runner(tmp_path):
    """A (tiny random) HuBERT folder end to end: fit-kmeans, extract, layer-mismatch refusal."""
    from transformers import HubertConfig, HubertModel

    cfg = HubertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                       intermediate_size=64, conv_dim=(8,) * 8, conv_kernel=(10, 3, 3, 3, 3, 2, 2, 2),
                       conv_stride=(5, 2, 2, 2, 2, 2, 2, 2), num_conv_pos_embeddings=16,
                       num_conv_pos_embedding_groups=2)
    torch.manual_seed(0)
    HubertModel(cfg).save_pretrained(tmp_path / "hub")
    src = tmp_path / "in"
    src.mkdir()
    for i, sec in enumerate((1.0, 1.6, 2.2)):
        speechlike(src / f"h{i}.wav", sec, seed=i)
    enc = f"hubert:{tmp_path / 'hub'}"
    km = tmp_path / "km.safetensors"
    slam_units("fit-kmeans", str(src), "--out", str(km), "--encoder", enc, "--layer", "2",
               "--k", "6", "--device", "cpu")
    out = tmp_path / "out"
    slam_units("extract", str(src), "--out", str(out), "--encoder", enc, "--layer", "2",
               "--kmeans", str(km), "--num-workers", "0", "--batch-seconds", "10")
    recs = {r["id"]: r for r in read_units(out)}
    # 40 samples of padding per side, as slamkit: (n + 80 - 720) // 640 + 1 == n // 640
    assert [recs[f"h{i}"]["n_frames"] for i in range(3)] == [25, 40, 55]
    assert all(sum(r["durations"]) == r["n_frames"] and max(r["units"]) < 6 for r in recs.values())
    assert recs["h0"]["encoder"] == enc
    with pytest.raises(ValueError, match="layer 2 dim 32; this encoder is .* layer 1"):
        run_units(UnitsConfig(input=str(src), out=str(tmp_path / "o2"), encoder=enc, layer=1,
                              kmeans=str(km), num_workers=0))


def test_read_units_cut_line_is_an_error_or_a_reported_skip(tmp_path):
    recs = [{"id": f"u{i}", "units": [1, 2], "durations": [1, 1]} for i in range(3)]
    write_jsonl(tmp_path / "units.jsonl", recs)
    with open(tmp_path / "units.jsonl", "a") as f:
        f.write('{"id": "u3", "units": [1')
    with pytest.raises(CutLineError, match=r"units.jsonl line 4: last line is cut off.*slam units"):
        list(read_units(tmp_path))
    fails = FailureLog(tmp_path / "export_failures.jsonl", stage="export")
    assert [r["id"] for r in read_units(tmp_path, fails)] == ["u0", "u1", "u2"]
    (rec,) = read_jsonl(tmp_path / "export_failures.jsonl")
    assert rec["id"] == "units.jsonl:line 4" and rec["path"].endswith("units.jsonl")
