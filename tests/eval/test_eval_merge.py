"""`slam eval --shard i/n` + `slam eval merge`: the merged results are the unsharded ones."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from slamlm.cli import main
from slamlm.eval.merge import EvalMergeConfig, EvalShardError, run_eval_merge
from slamlm.eval.runner import EvalConfig, run_eval
from slamlm.model import SpeechLM, named_shape
from slamlm.model.checkpoint import save_checkpoint
from slamlm.units.extractor import UnitExtractor
from slamlm.units.kmeans import KMeans, save_kmeans
from slamlm.units.shard import shard_of
from slamlm.vocab import UnitVocab

K = 16


@pytest.fixture
def setup(tmp_path, zr_root):
    """A tiny checkpoint (mel + random k-means) and three benches: ZR2021 x2 + unit pairs."""
    torch.manual_seed(0)
    km = KMeans(torch.randn(K, 80) * 2, encoder="mel", layer=0)
    save_kmeans(km, tmp_path / "km.safetensors")
    ex = UnitExtractor.load("mel", tmp_path / "km.safetensors")
    vocab = UnitVocab(n_units=K)
    model = SpeechLM(named_shape("tiny", vocab_size=vocab.size))
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(8.0 if p.dim() > 1 else 1.0)
    save_checkpoint(model, {"vocab": vocab, "units": ex.identity()}, tmp_path / "ck")
    g = torch.Generator().manual_seed(1)
    lines = []
    for i in range(40):
        pos, neg = (torch.randint(0, K, (int(n),), generator=g).tolist()
                    for n in torch.randint(3, 12, (2,), generator=g))
        lines.append(json.dumps({"id": f"p{i}", "positive": pos, "negative": neg,
                                 "key": f"k{i // 2}", "group": {"half": i % 2}}))
    (tmp_path / "pairs.jsonl").write_text("\n".join(lines) + "\n")
    benches = {"swuggy": str(zr_root / "lexical"), "sblimp": str(zr_root / "syntactic"),
               "mine": str(tmp_path / "pairs.jsonl")}
    return EvalConfig(checkpoint=tmp_path / "ck", benches=benches, out=tmp_path / "one",
                      device="cpu", max_tokens=256)


def _without_seconds(results):
    """results.json less the wall time and the output folder in the submission path."""
    for b in results["benchmarks"].values():
        b.pop("seconds", None)
        if "submission" in b:
            b["submission"] = b["submission"].split("zr2021_submission")[-1]
    return results


def _pairs(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_merged_shards_equal_the_unsharded_run(setup, tmp_path):
    one = json.loads(run_eval(setup).read_text())
    out = tmp_path / "sharded"
    for i in range(3):
        s = run_eval(EvalConfig(**{**setup.__dict__, "out": out, "shard": f"{i}/3"}))
        assert s.name == f"summary-{i}of3.json" and not (out / "results.json").exists()
    ids = [json.loads(x)["id"] for x in (out / "mine_pairs-1of3.jsonl").read_text().splitlines()]
    assert ids and all(shard_of(x, 3) == 1 for x in ids) and len(ids) < 40
    assert main(["eval", "merge", str(out)]) == 0
    merged = json.loads((out / "results.json").read_text())
    assert _without_seconds(merged) == _without_seconds(one)
    # per pair: same pairs, same order, same scores; log-probs equal up to the float rounding
    # of packed rows (a sequence's row-mates differ between shards, as with another
    # --batch-tokens), so those are compared to 1e-5
    for name in setup.benches:
        a, b = (_pairs(d / f"{name}_pairs.jsonl") for d in (setup.out, out))
        assert [r["id"] for r in a] == [r["id"] for r in b] and len(a) > 0
        for x, y in zip(a, b):
            assert {k: v for k, v in x.items() if not k.startswith("logp")} == {
                k: v for k, v in y.items() if not k.startswith("logp")}
            assert [x[k] for k in x if k.startswith("logp")] == pytest.approx(
                [y[k] for k in y if k.startswith("logp")], rel=1e-5)
    for f in (setup.out / "zr2021_submission").rglob("*.txt"):
        g = out / "zr2021_submission" / f.relative_to(setup.out / "zr2021_submission")
        a, b = (dict(line.split() for line in h.read_text().splitlines()) for h in (f, g))
        assert a.keys() == b.keys()
        assert [float(a[k]) for k in a] == pytest.approx([float(b[k]) for k in a], rel=1e-5)
    assert one["benchmarks"]["mine"]["breakdown"]["half"]  # breakdowns came along too

    # shards in separate folders (one per node), results into a third one
    dirs = [tmp_path / f"node{i}" for i in range(3)]
    for i, d in enumerate(dirs):
        d.mkdir()
        for f in out.glob(f"*-{i}of3.*"):
            shutil.copy(f, d / f.name)
    got = run_eval_merge(EvalMergeConfig(out=str(tmp_path / "joined"),
                                         dirs=[str(d) for d in dirs]))
    assert _without_seconds(json.loads(got.read_text())) == _without_seconds(one)


def test_missing_or_cut_shard_is_refused(setup, tmp_path, capsys):
    setup = EvalConfig(**{**setup.__dict__, "benches": {"mine": setup.benches["mine"]}})
    out = tmp_path / "sharded"
    run_eval(EvalConfig(**{**setup.__dict__, "out": out, "shard": "0/2"}))
    assert main(["eval", str(setup.checkpoint), "--bench", f"mine={setup.benches['mine']}",
                 "--out", str(out), "--device", "cpu", "--shard", "1/2"]) == 0  # CLI: default
    assert "wrote shard 1/2" in capsys.readouterr().out
    (out / "summary-1of2.json").rename(tmp_path / "saved.json")
    with pytest.raises(EvalShardError, match=r"eval shard 1/2 is missing .*slam eval .*ck "
                                             r"--bench mine=.*--shard 1/2"):
        run_eval_merge(EvalMergeConfig(out=str(out)))
    assert not (out / "results.json").exists()
    (tmp_path / "saved.json").rename(out / "summary-1of2.json")
    f = out / "mine_pairs-0of2.jsonl"
    f.write_text("".join(f.read_text().splitlines(keepends=True)[:-1]))  # lost its last pair
    with pytest.raises(EvalShardError, match=r"mine_pairs-0of2.jsonl: \d+ records, "
                                             r"summary-0of2.json says"):
        run_eval_merge(EvalMergeConfig(out=str(out)))
    assert not (out / "results.json").exists()

