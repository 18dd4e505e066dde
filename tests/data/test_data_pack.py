"""slam pack: documents, long-document pieces, val split, atomic/resume, shard checks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from slamlm.cli import main
from slamlm.data import PackConfig, PackedWindows, ShardError, TokenShard, run_pack
from slamlm.data.pack import is_val, split_long
from slamlm.data.windows import IGNORE, WindowSampler, eval_batches
from slamlm.io import write_jsonl


def _records(n: int, rng: np.random.Generator, k: int = 20, lo: int = 3, hi: int = 30) -> list[dict]:
    return [{"id": f"spk/utt{i:03d}", "units": rng.integers(0, k, rng.integers(lo, hi)).tolist(),
             "durations": [1] * 3} for i in range(n)]


@pytest.fixture
def units_dir(tmp_path):
    rng = np.random.default_rng(0)
    recs = _records(60, rng)
    write_jsonl(tmp_path / "units" / "a.jsonl", recs[:30])
    write_jsonl(tmp_path / "units" / "sub" / "b.jsonl.gz", recs[30:])
    return tmp_path / "units", recs


def test_pack_documents_and_split(units_dir, tmp_path):
    src, recs = units_dir
    out = run_pack(PackConfig(units=src, out=tmp_path / "tok", n_units=20, context=16,
                              val_fraction=0.2))
    train, val = TokenShard.open(out, "train"), TokenShard.open(out, "val")
    assert train.tokens.dtype == np.uint16
    # every record lands in exactly the split its id hash says, in file order, cut at 16
    want = {"train": [], "val": []}
    for r in recs:
        doc = np.array([1] + [u + 3 for u in r["units"]] + [2])
        want["val" if is_val(r["id"], 0.2) else "train"].extend(split_long(doc, 16))
    for shard, split in ((train, "train"), (val, "val")):
        assert shard.n_docs == len(want[split])
        assert all(np.array_equal(shard.doc(i), d) for i, d in enumerate(want[split]))
        assert shard.doc_lengths.max() <= 16
    assert 0 < val.n_docs < train.n_docs
    index = json.loads((out / "index.json").read_text())
    assert index["vocab"]["n_units"] == 20 and index["dtype"] == "uint16"
    assert (out / "config.yaml").is_file()


def test_long_document_pieces_keep_bos_and_eos():
    doc = np.array([1] + list(range(3, 40)) + [2])
    pieces = split_long(doc, 10)
    assert [len(p) for p in pieces] == [10, 10, 10, 9]
    assert pieces[0][0] == 1 and pieces[-1][-1] == 2 and 1 not in pieces[1] and 2 not in pieces[2]
    assert np.array_equal(np.concatenate(pieces), doc)


def test_resume_skips_and_changed_input_repacks(units_dir, tmp_path):
    src, _ = units_dir
    cfg = PackConfig(units=src, out=tmp_path / "tok", n_units=20, context=16, val_fraction=0.2)
    run_pack(cfg)
    mtime = (tmp_path / "tok" / "train.bin").stat().st_mtime_ns
    run_pack(cfg)
    assert (tmp_path / "tok" / "train.bin").stat().st_mtime_ns == mtime  # skipped
    write_jsonl(src / "c.jsonl", [{"id": "new", "units": [1, 2, 3]}])
    run_pack(cfg)
    n = TokenShard.open(tmp_path / "tok", "train").n_docs + TokenShard.open(tmp_path / "tok", "val").n_docs
    assert n > 60


def test_bad_unit_goes_to_failures_or_is_fatal_when_strict(tmp_path):
    write_jsonl(tmp_path / "u" / "a.jsonl", [{"id": "ok", "units": [1, 2]},
                                             {"id": "bad", "units": [1, 731]}])
    out = run_pack(PackConfig(units=tmp_path / "u", out=tmp_path / "tok", n_units=500))
    fails = [json.loads(line) for line in (tmp_path / "tok_failures.jsonl").read_text().splitlines()]
    assert fails[0]["id"] == "bad" and "a.jsonl line 2 (id bad): unit 731" in fails[0]["reason"]
    assert json.loads((out / "index.json").read_text())["n_failures"] == 1
    with pytest.raises(ValueError, match=r"line 2 \(id bad\): unit 731 is outside"):
        run_pack(PackConfig(units=tmp_path / "u", out=tmp_path / "tok2", strict=True))


def test_at_least_one_val_doc_and_truncated_shard_refused(tmp_path):
    write_jsonl(tmp_path / "u" / "a.jsonl", [{"id": f"r{i}", "units": [i] * 40} for i in range(3)])
    out = run_pack(PackConfig(units=tmp_path / "u", out=tmp_path / "tok", context=16,
                              val_fraction=1e-9))
    val, train = TokenShard.open(out, "val"), TokenShard.open(out, "train")
    assert val.n_tokens == 42 and val.n_docs == 3  # one whole 42-token record, in 3 pieces
    assert train.n_tokens == 84 and train.doc(0)[0] == 1
    with open(out / "train.bin", "r+b") as f:
        f.truncate(80)
    with pytest.raises(ShardError, match="train.bin has 40 tokens but index.json says 84: re-run"):
        TokenShard.open(out, "train")


def test_windows_targets_stay_inside_documents(units_dir, tmp_path):
    src, _ = units_dir
    out = run_pack(PackConfig(units=src, out=tmp_path / "tok", n_units=20, context=16))
    shard = TokenShard.open(out, "train")
    ds = PackedWindows(shard, context=8)
    mb = ds.batch([0, 3])
    assert mb.input_ids.shape == mb.targets.shape == mb.doc_ids.shape == (2, 8)
    for b, w in enumerate([0, 3]):
        flat = np.asarray(shard.tokens[w * 8:w * 8 + 9], dtype=np.int64)
        assert np.array_equal(mb.input_ids[b], flat[:-1])
        kept = mb.targets[b] != IGNORE
        assert np.array_equal(mb.targets[b][kept], flat[1:][kept])
        # a target is dropped exactly where the next token starts a new document (bos)
        starts = np.isin(np.arange(w * 8 + 1, w * 8 + 9), shard.doc_offsets)
        assert np.array_equal(~kept, starts)
        assert mb.doc_ids[b][0] == 0 and np.all(np.diff(mb.doc_ids[b]) >= 0)
    assert ds.n_valid([0, 3]) == int((mb.targets != IGNORE).sum())


def test_sampler_order_resume_and_rank_slices(units_dir, tmp_path):
    src, _ = units_dir
    out = run_pack(PackConfig(units=src, out=tmp_path / "tok", n_units=20, context=16))
    ds = PackedWindows(TokenShard.open(out, "train"), context=8)
    one = WindowSampler(ds, micro_batch=2, accum=4, seed=3)
    steps = [one.next() for _ in range(one.steps_per_epoch + 2)]  # crosses an epoch
    assert one.position.epoch == 1
    ranks = [WindowSampler(ds, micro_batch=2, accum=2, seed=3, rank=r, world=2) for r in range(2)]
    for micros, n_valid in steps:
        per_rank = [s.next() for s in ranks]
        assert all(nv == n_valid for _, nv in per_rank)
        # micro j of the global batch lives on rank j % 2 at accumulation slot j // 2
        for j, mb in enumerate(micros):
            assert np.array_equal(per_rank[j % 2][0][j // 2].input_ids, mb.input_ids)
    again = WindowSampler(ds, micro_batch=2, accum=4, seed=3, position=one.position)
    assert np.array_equal(again.next()[0][0].input_ids, one.next()[0][0].input_ids)
    assert not np.array_equal(ds.order(3, 0), ds.order(3, 1))


def test_eval_batches_cover_val_with_padding(tmp_path):
    write_jsonl(tmp_path / "u" / "a.jsonl", [{"id": f"r{i}", "units": [i] * 5} for i in range(4)])
    out = run_pack(PackConfig(units=tmp_path / "u", out=tmp_path / "tok", val_fraction=0.0))
    ds = PackedWindows(TokenShard.open(out, "train"), context=10, pad_last=True)
    batches = list(eval_batches(ds, micro_batch=2))
    n_targets = sum(int((b.targets != IGNORE).sum()) for b in batches)
    assert len(ds) == 3 and n_targets == 4 * 6  # each 7-token doc has 6 in-doc targets


def test_cli_pack(units_dir, tmp_path, capsys):
    src, _ = units_dir
    rc = main(["pack", str(src), "--out", str(tmp_path / "tok"), "--n-units", "20",
               "--context", "32", "--set", "val_fraction=0.1"])
    assert rc == 0
    index = json.loads((tmp_path / "tok" / "index.json").read_text())
    assert index["context"] == 32 and index["val_fraction"] == 0.1
    assert main(["pack", str(tmp_path / "nope"), "--out", str(tmp_path / "t2")]) == 1
    assert "nope: no such units file or folder" in capsys.readouterr().err


def test_cut_last_line_is_reported_in_failures_not_dropped(tmp_path):
    write_jsonl(tmp_path / "u" / "a.jsonl", [{"id": f"r{i}", "units": [1, 2, i]} for i in range(4)])
    with open(tmp_path / "u" / "a.jsonl", "a") as f:
        f.write('{"id": "r4", "units": [1, ')  # a killed writer
    out = run_pack(PackConfig(units=tmp_path / "u", out=tmp_path / "tok", n_units=500))
    fails = [json.loads(x) for x in (tmp_path / "tok_failures.jsonl").read_text().splitlines()]
    assert [f["id"] for f in fails] == ["a.jsonl:line 5"] and "cut off" in fails[0]["reason"]
    index = json.loads((out / "index.json").read_text())
    assert index["n_failures"] == 1
    assert sum(s["n_docs"] for s in index["splits"].values()) == 4
