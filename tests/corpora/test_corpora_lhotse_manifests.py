"""lhotse recordings and cuts manifests, written with lhotse itself."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
from corpora_helpers import CLIPS, TEXTS, extract, same_units

lhotse = pytest.importorskip("lhotse")

from slamlm.corpora import CorpusError, list_items  # noqa: E402


def long_recording(path, gap: float = 0.25):
    """The clips in one file with ``gap`` s of silence around each; their (start, dur)."""
    parts, spans, t = [], {}, 0.0
    for k, x in CLIPS.items():
        parts += [np.zeros(int(gap * 16000), np.float32), x]
        t += gap
        spans[k] = (t, len(x) / 16000)
        t += len(x) / 16000
    sf.write(path, np.concatenate(parts + [np.zeros(4000, np.float32)]), 16000, subtype="PCM_16")
    return spans


def test_cuts_decode_their_span_with_supervision_text(tmp_path, kmeans8, plain_units):
    spans = long_recording(tmp_path / "long.flac")
    rec = lhotse.Recording.from_file(tmp_path / "long.flac", recording_id="long")
    cuts = [lhotse.MonoCut(id=f"long-{k}", start=s, duration=d, channel=0, recording=rec,
                           supervisions=[lhotse.SupervisionSegment(
                               id=f"sup-{k}", recording_id="long", start=s, duration=d,
                               text=TEXTS[k])])
            for k, (s, d) in spans.items()]
    cuts.append(lhotse.MonoCut(id="past-end", start=30.0, duration=1.0, channel=0, recording=rec))
    lhotse.CutSet.from_cuts(cuts).to_file(tmp_path / "libri_cuts_dev.jsonl.gz")
    items = list_items(tmp_path / "libri_cuts_dev.jsonl.gz")
    assert [it.id for it in items] == [f"long-{k}" for k in CLIPS] + ["past-end"]
    assert items[1].offset == pytest.approx(spans["utt-b"][0]) and items[1].path.endswith("long.flac")
    got = extract(tmp_path / "libri_cuts_dev.jsonl.gz", tmp_path / "out", kmeans8)
    assert sorted(got) == sorted(f"long-{k}" for k in CLIPS)
    same_units(got, plain_units, key=lambda rid: rid[len("long-"):])  # exactly the span's frames
    assert {r["id"]: r["text"] for r in got.values()} == {f"long-{k}": t for k, t in TEXTS.items()}
    fail = json.loads((tmp_path / "out" / "failures.jsonl").read_text())
    assert fail["id"] == "past-end" and "past the end" in fail["reason"]


def test_recordings_with_sibling_supervisions(tmp_path, kmeans8, plain_units):
    recs = []
    for k, x in CLIPS.items():
        sf.write(tmp_path / f"{k}.flac", x, 16000, subtype="PCM_16")
        recs.append(lhotse.Recording.from_file(tmp_path / f"{k}.flac", recording_id=k))
    lhotse.RecordingSet.from_recordings(recs).to_file(tmp_path / "x_recordings_a.jsonl.gz")
    lhotse.SupervisionSet.from_segments([
        lhotse.SupervisionSegment(id=f"s-{k}", recording_id=k, start=0, duration=0.5, text=t)
        for k, t in TEXTS.items()]).to_file(tmp_path / "x_supervisions_a.jsonl.gz")
    got = extract(tmp_path / "x_recordings_a.jsonl.gz", tmp_path / "out", kmeans8)
    same_units(got, plain_units)
    assert {k: r["text"] for k, r in got.items()} == TEXTS


def test_supervisions_manifest_is_refused_clearly(tmp_path):
    lhotse.SupervisionSet.from_segments([lhotse.SupervisionSegment(
        id="s", recording_id="r", start=0, duration=1, text="t")]).to_file(tmp_path / "s.jsonl.gz")
    with pytest.raises(CorpusError, match="s.jsonl.gz.*SupervisionSet; give a cuts or recordings"):
        list_items(tmp_path / "s.jsonl.gz", input_format="lhotse")
