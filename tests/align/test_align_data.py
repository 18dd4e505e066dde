"""Triplet loading: unit lists, audio paths, failures, repetition filter, split, packing."""

from __future__ import annotations

import json

import numpy as np
import pytest

from slamlm.align.data import auto_bleu, load_triplets, pairs_hash, split_heldout
from slamlm.align.packing import chunk_by_tokens, pack_rows
from slamlm.audio import load_audio
from slamlm.io import FailureLog, read_jsonl
from slamlm.vocab import UnitVocab

V = UnitVocab(n_units=10)


def _write(path, records):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return path


def _energy_units(paths):
    """A real (if crude) audio -> units map: 4 quantised frame energies per file."""
    out = []
    for p in paths:
        wav = load_audio(p)
        frames = np.array_split(np.abs(wav), 4)
        out.append(np.array([min(9, int(f.mean() * 30)) for f in frames]))
    return out


def test_unit_list_triplets_tokenised_with_bos_and_eos(tmp_path):
    f = _write(tmp_path / "t.jsonl", [
        {"id": "a", "prompt_units": [0, 1], "chosen_units": [2, 3], "rejected_units": [9]},
    ])
    pairs, s = load_triplets(f, V)
    (p,) = pairs
    assert p.id == "a" and p.prompt.tolist() == [1, 3, 4]
    assert p.chosen.tolist() == [5, 6, 2] and p.rejected.tolist() == [12, 2]
    c, r = p.sequences()
    assert c.tolist() == [1, 3, 4, 5, 6, 2] and r.tolist() == [1, 3, 4, 12, 2]
    assert (s.n_records, s.n_pairs, s.n_failed) == (1, 1, 0)


def test_audio_triplets_relative_paths_and_failures_logged(tmp_path, sine_wav):
    for name, freq in (("a/p.wav", 200), ("a/c.wav", 300), ("a/r.wav", 400)):
        sine_wav(0.5, name=name, freq=freq)
    rec = {"prompt_path": "a/p.wav", "chosen_path": "a/c.wav", "rejected_path": "a/r.wav"}
    f = _write(tmp_path / "trip.jsonl", [
        rec,
        {**rec, "id": "gone", "chosen_path": "a/missing.wav"},
        "{not json",
        {**rec, "id": "bad_unit", "prompt_units": [0, 55], "chosen_units": [1],
         "rejected_units": [2]},
        {"id": "nothing"},
    ])
    fails = FailureLog(tmp_path / "failures.jsonl", stage="dpo")
    pairs, s = load_triplets(f, V, encode=_energy_units, failures=fails)
    assert [p.id for p in pairs] == ["a/p"]
    assert pairs[0].prompt.tolist() == [1] + (_energy_units([tmp_path / "a/p.wav"])[0] + 3).tolist()
    assert (s.n_records, s.n_pairs, s.n_failed) == (5, 1, 4)
    reasons = {r["id"]: r["reason"] for r in read_jsonl(tmp_path / "failures.jsonl")}
    assert "a/missing.wav" in reasons["gone"] and "not found" in reasons["gone"]
    assert "trip.jsonl line 3" in reasons["trip.jsonl:3"] and "not valid JSON" in reasons["trip.jsonl:3"]
    assert "unit 55 is outside the vocabulary" in reasons["bad_unit"]
    assert "prompt_/chosen_/rejected_units" in reasons["nothing"]
    with pytest.raises(ValueError, match="line 2: audio file"):
        load_triplets(f, V, encode=_energy_units, failures=None)
    with pytest.raises(ValueError, match="line 2"):
        load_triplets(f, V, encode=_energy_units,
                      failures=FailureLog(tmp_path / "f2.jsonl", stage="dpo", strict=True))


def test_auto_bleu_values_and_repetition_filter(tmp_path):
    assert auto_bleu([1, 2, 3, 4, 5], n=2) == 0.0
    assert auto_bleu([1, 2, 1, 2, 1, 2], n=2) == 1.0
    # bigrams: (a,b) (b,a) (a,b) (b,c): (a,b) repeats twice -> 2 / 4
    assert auto_bleu("a b a b c".split(), n=2) == 0.5
    assert auto_bleu([1, 2], n=4) == 0.0
    f = _write(tmp_path / "t.jsonl", [
        {"id": "rep_units", "prompt_units": [0], "chosen_units": [1, 2, 3, 4] * 3,
         "rejected_units": [5]},
        {"id": "rep_text", "prompt_units": [0], "chosen_units": [1, 2, 3, 4, 5, 6],
         "rejected_units": [5], "chosen_text": "the cat the cat the cat"},
        {"id": "ok", "prompt_units": [0], "chosen_units": [1, 2, 3, 4, 5, 6],
         "rejected_units": [5], "chosen_text": "once upon a time a cat sat"},
    ])
    pairs, s = load_triplets(f, V, max_auto_bleu=0.3)
    assert [p.id for p in pairs] == ["ok"] and s.n_repetitive == 2
    pairs, s = load_triplets(f, V)
    assert len(pairs) == 3 and s.n_repetitive == 0


def test_split_is_stable_by_id_and_hash_changes_with_tokens(tmp_path):
    recs = [{"id": f"p{i}", "prompt_units": [i % 10], "chosen_units": [1], "rejected_units": [2]}
            for i in range(200)]
    pairs, _ = load_triplets(_write(tmp_path / "t.jsonl", recs), V)
    train, held = split_heldout(pairs, 0.1)
    train2, held2 = split_heldout(list(reversed(pairs)), 0.1)
    assert {p.id for p in held} == {p.id for p in held2}
    assert 5 <= len(held) <= 40 and len(train) + len(held) == 200
    assert not {p.id for p in held} & {p.id for p in train}
    pairs2, _ = load_triplets(_write(tmp_path / "u.jsonl", recs[:-1] + [
        {**recs[-1], "chosen_units": [3]}]), V)
    assert pairs_hash(pairs) != pairs_hash(pairs2) and pairs_hash(pairs) == pairs_hash(pairs[:])


def test_pack_rows_layout_and_padding():
    seqs = [np.array([1, 3, 4, 2]), np.array([1, 3, 5, 6, 7, 2]), np.array([1, 8, 2])]
    b = pack_rows(seqs, [2, 1, 2], row_tokens=8)
    # rows (first-fit, longest first): [seq1 (6)] , [seq0 (4), seq2 (3)]
    assert b.input_ids.tolist() == [[1, 3, 5, 6, 7, 2, 0], [1, 3, 4, 2, 1, 8, 2]]
    assert b.doc_ids.tolist() == [[0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 1, 1, 1]]
    # every target is the token right after its logits position, in the same document
    ids = b.input_ids
    assert (ids[b.row, b.col + 1] == b.target).all()
    assert (b.doc_ids[b.row, b.col] == b.doc_ids[b.row, b.col + 1]).all()
    assert np.bincount(b.seq_index.numpy()).tolist() == [2, 5, 1]
    padded = pack_rows(seqs, [2, 1, 2], row_tokens=0)  # one sequence per row
    assert padded.input_ids.tolist() == [[1, 3, 4, 2, 0, 0], [1, 3, 5, 6, 7, 2], [1, 8, 2, 0, 0, 0]]
    assert (padded.input_ids[padded.row, padded.col + 1] == padded.target).all()
    with pytest.raises(ValueError, match="sequence 0"):
        pack_rows(seqs, [0, 1, 1], row_tokens=8)
    assert list(chunk_by_tokens([3, 3, 3, 9, 1], max_tokens=6)) == [[0, 1], [2], [3], [4]]
