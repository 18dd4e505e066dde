"""Peer toolkit formats: import the real features/tokens files, export them back byte for byte."""

from __future__ import annotations

import json

import pytest

from slamlm.io import ManifestError
from slamlm.units.peer import export_peer, import_peer, parse_audio_repr
from slamlm.units.runner import read_units


def test_features_round_trip_is_byte_identical(tmp_path, peer_example_dir):
    src = peer_example_dir / "features.jsonl"
    out = import_peer(src, tmp_path / "units")
    recs = {r["id"]: r for r in read_units(out)}
    assert sorted(recs) == ["audio1", "audio2"]
    assert recs["audio1"]["n_frames"] == 352 and recs["audio2"]["n_frames"] == 398
    assert len(recs["audio2"]["units"]) == 328 and recs["audio2"]["units"][:3] == [3, 49, 7]
    assert recs["audio1"]["path"] == "../example_data/audio/audio1.flac"
    export_peer(out, tmp_path / "features.jsonl", fmt="features")
    assert (tmp_path / "features.jsonl").read_bytes() == src.read_bytes()
    export_peer(out, tmp_path / "tokens.jsonl", fmt="tokens")
    assert (tmp_path / "tokens.jsonl").read_bytes() == (peer_example_dir / "tokens.jsonl").read_bytes()


def test_tokens_import_matches_features(tmp_path, peer_example_dir):
    feats = {r["id"]: r for r in read_units(import_peer(peer_example_dir / "features.jsonl",
                                                        tmp_path / "f"))}
    toks = {r["id"]: r for r in read_units(import_peer(peer_example_dir / "tokens.jsonl",
                                                       tmp_path / "t"))}
    for rid in feats:
        assert toks[rid]["units"] == feats[rid]["units"]
        assert toks[rid]["durations"] is None and toks[rid]["n_frames"] is None
    with pytest.raises(ManifestError, match="export it with --format tokens"):
        export_peer(tmp_path / "t", tmp_path / "x.jsonl", fmt="features")


def test_bad_peer_lines_are_named(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"file_name": "a.wav", "units": [1, 2], "duration": [1]}) + "\n")
    with pytest.raises(ManifestError, match="bad.jsonl line 1: 2 units but 1 durations"):
        import_peer(bad, tmp_path / "o")
    with pytest.raises(ManifestError, match="unexpected text 'hello'"):
        parse_audio_repr("<Un1>hello<Un2>")
    dup = tmp_path / "dup.jsonl"
    dup.write_text("".join(json.dumps({"file_name": f"{d}/a.wav", "audio_repr": "<Un1>"}) + "\n"
                           for d in ("x", "y")))
    with pytest.raises(ManifestError, match="id 'a'.*repeats line 1"):
        import_peer(dup, tmp_path / "o2")
