"""uint32 token shards for vocabularies over 65 536 tokens; old uint16 shards still load."""

from __future__ import annotations

import json

import numpy as np
import pytest

from slamlm.data import PackConfig, PackedWindows, ShardError, TokenShard, run_pack
from slamlm.data.pack import is_val, split_long
from slamlm.data.shards import ShardWriter, shard_dtype
from slamlm.interleave import pack as ip
from slamlm.io import write_jsonl
from slamlm.vocab import UnitVocab

N_UNITS = 66_000


def test_shard_dtype_follows_vocabulary():
    assert shard_dtype(503).name == "uint16"
    assert shard_dtype(65_536).name == "uint16"  # ids 0..65535 fit
    assert shard_dtype(65_537).name == "uint32"
    assert shard_dtype(151_667).name == "uint32"  # Qwen2.5-sized
    with pytest.raises(ValueError, match="does not fit uint32"):
        shard_dtype(2**32 + 1)


def test_writer_refuses_ids_beyond_its_dtype(tmp_path):
    w = ShardWriter(tmp_path, "train", "uint16")
    with pytest.raises(ShardError, match="token id 70000 does not fit uint16 shards"):
        w.add(np.array([1, 70_000, 2]))
    w.add(np.array([1, 65_535, 2]))
    assert w.finish()["n_tokens"] == 3


@pytest.fixture
def big_units(tmp_path):
    rng = np.random.default_rng(0)
    recs = [{"id": f"u{i:03d}", "units": rng.integers(0, N_UNITS, rng.integers(5, 40)).tolist()}
            for i in range(40)]
    recs[0]["units"][:3] = [N_UNITS - 1, 65_533, 0]  # ids 65 535+3, 65 536 and a small one
    write_jsonl(tmp_path / "units" / "a.jsonl", recs)
    return tmp_path / "units", recs


def test_pack_uint32_roundtrip_and_windows(big_units, tmp_path):
    src, recs = big_units
    out = run_pack(PackConfig(units=src, out=tmp_path / "tok", n_units=N_UNITS, context=16,
                              val_fraction=0.1))
    index = json.loads((out / "index.json").read_text())
    assert index["dtype"] == "uint32" and index["vocab"]["n_units"] == N_UNITS
    train = TokenShard.open(out, "train")
    assert train.tokens.dtype == np.uint32
    assert (out / "train.bin").stat().st_size == 4 * train.n_tokens
    want = []
    for r in recs:
        if not is_val(r["id"], 0.1):
            want.extend(split_long(np.array([1] + [u + 3 for u in r["units"]] + [2]), 16))
    assert train.n_docs == len(want)
    assert all(np.array_equal(train.doc(i), d) for i, d in enumerate(want))
    flat = np.concatenate(want)
    assert flat.max() > 65_535 and int(train.tokens.max()) == flat.max()
    # windows return the exact int64 ids, above 65 535 included
    data = PackedWindows(train, context=16)
    mb = data.batch(np.arange(len(data)))
    assert mb.input_ids.dtype == np.int64
    assert np.array_equal(mb.input_ids.reshape(-1), flat[:len(data) * 16])
    assert mb.input_ids.max() > 65_535
    kept = mb.targets[mb.targets != -100]
    assert kept.max() > 65_535 and kept.max() < UnitVocab(n_units=N_UNITS).size


def test_size_check_counts_4_byte_tokens(big_units, tmp_path):
    src, _ = big_units
    out = run_pack(PackConfig(units=src, out=tmp_path / "tok", n_units=N_UNITS, context=16,
                              val_fraction=0.1))
    n = TokenShard.open(out, "train").n_tokens
    with open(out / "train.bin", "r+b") as f:
        f.truncate(4 * (n - 5))
    with pytest.raises(ShardError, match=f"train.bin has {n - 5} tokens but index.json says {n}"):
        TokenShard.open(out, "train")
    with open(out / "train.bin", "r+b") as f:  # a partial 4-byte token is refused too
        f.truncate(4 * (n - 5) + 2)
    with pytest.raises(ShardError, match="re-run slam pack"):
        TokenShard.open(out, "train")


def test_old_uint16_index_without_dtype_loads(tmp_path):
    out = run_pack_small(tmp_path)
    index = json.loads((out / "index.json").read_text())
    assert index["dtype"] == "uint16"
    want = TokenShard.open(out, "train")
    n, docs = want.n_tokens, [want.doc(i) for i in range(want.n_docs)]
    del index["dtype"]  # shards written before the dtype field mattered
    (out / "index.json").write_text(json.dumps(index))
    old = TokenShard.open(out, "train")
    assert old.tokens.dtype == np.uint16 and old.n_tokens == n
    assert all(np.array_equal(old.doc(i), d) for i, d in enumerate(docs))
    index["dtype"] = "float32"
    (out / "index.json").write_text(json.dumps(index))
    with pytest.raises(ShardError, match="unsupported token dtype 'float32'"):
        TokenShard.open(out, "train")


def run_pack_small(tmp_path):
    rng = np.random.default_rng(1)
    recs = [{"id": f"s{i}", "units": rng.integers(0, 20, 12).tolist()} for i in range(20)]
    write_jsonl(tmp_path / "small" / "a.jsonl", recs)
    return run_pack(PackConfig(units=tmp_path / "small", out=tmp_path / "small_tok", n_units=20,
                               context=16, val_fraction=0.2))


def test_pack_interleaved_with_70k_vocabulary(tmp_path, monkeypatch):
    """An interleaved vocabulary of 69 000 text tokens (made-up tokenizer) packs to uint32."""
    vocab = UnitVocab(n_units=20, n_text=69_000)
    assert vocab.size > 65_536

    def tokenize(text: str) -> list[int]:  # word -> one id near the top of the text vocabulary
        return [68_000 + sum(map(ord, w)) % 1000 for w in text.split()]

    monkeypatch.setattr(ip, "load_text_side", lambda cfg: (tokenize, vocab))
    rng = np.random.default_rng(2)
    man, recs = [], []
    for i in range(30):
        words = [f"w{int(j)}" for j in rng.integers(0, 50, 8)]
        man.append({"id": f"r{i}", "words": [[w, 0.5 * k, 0.5 * k + 0.4]
                                             for k, w in enumerate(words)]})
        recs.append({"id": f"r{i}", "units": rng.integers(0, 20, 200).tolist(),
                     "durations": [1] * 200})
    write_jsonl(tmp_path / "man.jsonl", man)
    write_jsonl(tmp_path / "units" / "a.jsonl", recs)
    cfg = ip.InterleavePackConfig(units=str(tmp_path / "units"), manifest=str(tmp_path / "man.jsonl"),
                                  out=str(tmp_path / "tok"), tokenizer="fake", n_units=20,
                                  mix="text=1", val_fraction=0.1, context=32)
    out = ip.run_pack_interleaved(cfg)
    index = json.loads((out / "index.json").read_text())
    assert index["dtype"] == "uint32" and index["vocab"]["n_text"] == 69_000
    train = TokenShard.open(out, "train")
    assert train.tokens.dtype == np.uint32 and train.vocab == vocab
    doc = train.doc(0)
    text = doc[(doc >= vocab.text_offset) & (doc < vocab.text_offset + vocab.n_text)]
    assert len(text) and text.min() >= vocab.text_offset + 68_000 > 65_535
    ids = {tuple(tokenize(" ".join(w for w, *_ in m["words"]))) for m in man}
    assert tuple((text - vocab.text_offset).tolist()) in ids
