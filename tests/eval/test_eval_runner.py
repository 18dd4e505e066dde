"""End to end: tiny ZR2021 set -> mel units -> tiny SpeechLM checkpoint -> results.json."""

import csv
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import torch
from eval_helpers import write_wav

from slamlm.eval.likelihood import token_logprobs
from slamlm.eval.readers import read_benchmark
from slamlm.eval.runner import EvalConfig, format_table, run_eval
from slamlm.eval.unitcache import dedup_units
from slamlm.model import SpeechLM, named_shape
from slamlm.model.checkpoint import save_checkpoint
from slamlm.units.extractor import UnitExtractor
from slamlm.units.kmeans import KMeans, save_kmeans
from slamlm.vocab import UnitVocab

K = 16


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    """A tiny SpeechLM checkpoint whose meta names a mel + random k-means extractor."""
    torch.manual_seed(0)
    torch.set_num_threads(1)
    d = tmp_path_factory.mktemp("ckpt")
    km = KMeans(torch.randn(K, 80) * 2, encoder="mel", layer=0)
    save_kmeans(km, d / "km.safetensors")
    ex = UnitExtractor.load("mel", d / "km.safetensors")
    vocab = UnitVocab(n_units=K)
    model = SpeechLM(named_shape("tiny", vocab_size=vocab.size))
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(8.0 if p.dim() > 1 else 1.0)
    save_checkpoint(model, {"vocab": vocab, "units": ex.identity()}, d / "step_1")
    return d / "step_1", model.eval(), ex, vocab


def hand_accuracy(pairs, model, ex, vocab):
    """Per pair, score each side with its own forward; average over voices, then ids."""
    def lp(path):
        toks = vocab.encode_units(dedup_units(ex.encode_paths([path])[0]))
        seq = np.concatenate([[vocab.bos_id], toks, [vocab.eos_id]])
        v = token_logprobs(model, [seq], max_tokens=len(seq))[0]
        return {"mean": v.mean(), "sum": v.sum()}

    per_key = {"mean": {}, "sum": {}}
    for p in pairs:
        a, b = lp(p.positive), lp(p.negative)
        for var in per_key:
            s = 1.0 if a[var] > b[var] else 0.5 if a[var] == b[var] else 0.0
            per_key[var].setdefault(p.key, []).append(s)
    return {var: float(np.mean([np.mean(v) for v in d.values()])) for var, d in per_key.items()}


def official_accuracy(task: str, gold, submission) -> float:
    """The official zerospeech2021 rule, restated: lexical merges word/non-word rows on (voice,
    id) and averages by id; syntactic pairs the n-th correct=1 row with the n-th correct=0 row
    and averages by (type, subtype, id). Scores come from the submission file alone."""
    score = dict(line.split(" ") for line in submission.read_text().splitlines())
    rows = list(csv.DictReader(open(gold, newline="")))
    pos = [r for r in rows if r["correct"] == "1"]
    neg = [r for r in rows if r["correct"] == "0"]
    if task == "lexical":
        pairs = [(w, n) for w in pos for n in neg if (w["voice"], w["id"]) == (n["voice"], n["id"])]
        key = lambda w: w["id"]  # noqa: E731
    else:
        pairs = list(zip(pos, neg))
        key = lambda w: (w["type"], w["subtype"], w["id"])  # noqa: E731
    by_key = defaultdict(list)
    for w, n in pairs:
        a, b = float(score[w["filename"]]), float(score[n["filename"]])
        by_key[key(w)].append(1.0 if a > b else 0.5 if a == b else 0.0)
    return float(np.mean([np.mean(v) for v in by_key.values()]))


def test_zr2021_eval_matches_hand_computation(zr_root, ckpt, tmp_path, monkeypatch):
    folder, model, ex, vocab = ckpt
    cfg = EvalConfig(checkpoint=folder, out=tmp_path / "out", max_tokens=64, device="cpu",
                     benches={"swuggy": str(zr_root / "lexical"), "sblimp": str(zr_root)})
    path = run_eval(cfg)
    res = json.loads(path.read_text())
    for name in ("swuggy", "sblimp"):
        pairs = read_benchmark(cfg.benches[name], name).pairs
        r = res["benchmarks"][name]
        assert r["n_pairs"] == 6 and r["n_keys"] == 3 and r["chance"] == 0.5
        hand = hand_accuracy(pairs, model, ex, vocab)
        for v in ("mean", "sum"):
            assert r[f"accuracy_{v}"] == pytest.approx(hand[v])
        assert r["accuracy"] == r["accuracy_mean"]
        assert r["ci95"] == r["ci95_mean"] and r["ci95"][0] <= r["accuracy"] <= r["ci95"][1]
        assert r["length_shorter"] + r["length_longer"] == pytest.approx(1.0)
        assert r["n_length_pairs"] == 6 and r["learned"] in (True, False)
    assert res["ci_method"] == "wilson" and "learned" in res["definitions"]
    assert set(res["benchmarks"]["swuggy"]["breakdown"]["frequency_band"]) == {"oov", "6-20", ">100"}
    recs = [json.loads(line) for line in (tmp_path / "out/sblimp_pairs.jsonl").read_text().splitlines()]
    assert len(recs) == 6
    r0 = recs[0]
    assert r0["score_mean"] == (1.0 if r0["logp_pos_mean"] > r0["logp_neg_mean"] else 0.0)
    assert r0["logp_pos_sum"] == pytest.approx(r0["logp_pos_mean"] * (r0["n_tokens_pos"] - 1))
    assert (tmp_path / "out/config.yaml").is_file()
    assert "swuggy" in format_table(res) and "frequency_band=oov" in format_table(res)

    # official submission files: one "<file> <log-prob>" line per wav; the official rule
    # applied to them gives our accuracy (mean variant in zr2021_submission, sum in _sum)
    for task, name in (("lexical", "swuggy"), ("syntactic", "sblimp")):
        gold = zr_root / task / "dev/gold.csv"
        for variant, folder in (("mean", "zr2021_submission"), ("sum", "zr2021_submission_sum")):
            sub = tmp_path / "out" / folder / task / "dev.txt"
            names = [line.split(" ")[0] for line in sub.read_text().splitlines()]
            assert names == sorted(p.stem for p in (zr_root / task / "dev").glob("*.wav"))
            got = official_accuracy(task, gold, sub)
            assert got == pytest.approx(res["benchmarks"][name][f"accuracy_{variant}"])
        assert res["benchmarks"][name]["submission"] == str(
            tmp_path / "out/zr2021_submission" / task / "dev.txt")
    lp = {}
    for r in map(json.loads, (tmp_path / "out/swuggy_pairs.jsonl").read_text().splitlines()):
        lp[Path(r["positive"]).stem], lp[Path(r["negative"]).stem] = r["logp_pos_mean"], r["logp_neg_mean"]
    lines = (tmp_path / "out/zr2021_submission/lexical/dev.txt").read_text().splitlines()
    assert {a: float(b) for a, b in (x.split(" ") for x in lines)} == lp

    # second run: every file comes from the unit cache, nothing is encoded, same results
    def no_encoding(self, paths):
        raise AssertionError(f"encoded {paths} again despite the cache")

    monkeypatch.setattr(UnitExtractor, "encode_paths", no_encoding)
    res2 = json.loads(run_eval(cfg).read_text())
    for name in ("swuggy", "sblimp"):
        assert res2["benchmarks"][name]["accuracy_mean"] == res["benchmarks"][name]["accuracy_mean"]


def test_bad_file_goes_to_failures(ckpt, tmp_path):
    folder, *_ = ckpt
    sc = tmp_path / "ssc"
    for i in range(3):
        write_wav(sc / f"{i}_correct.wav", i)
        write_wav(sc / f"{i}_wrong.wav", i + 10)
    (sc / "1_wrong.wav").write_bytes(b"RIFF broken")
    cfg = EvalConfig(checkpoint=folder, out=tmp_path / "out", device="cpu", benches={"ssc": str(sc)})
    res = json.loads(run_eval(cfg).read_text())["benchmarks"]["ssc"]
    assert res["n_pairs"] == 2 and res["n_skipped"] == 1 and res["kind"] == "storycloze"
    fails = (tmp_path / "out/failures.jsonl").read_text()
    assert "1_wrong.wav" in fails
    strict = EvalConfig(checkpoint=folder, out=tmp_path / "out2", device="cpu",
                        benches={"ssc": str(sc)}, strict=True)
    with pytest.raises(ValueError, match="1_wrong.wav"):
        run_eval(strict)


def test_cli_with_unit_manifest(ckpt, tmp_path, capsys):
    from slamlm.cli import main

    folder, model, _, vocab = ckpt
    recs = [{"id": "a", "positive": [1, 1, 2, 3], "negative": [3, 2, 1]},
            {"id": "b", "positive": [5, 6, 7, 8, 9], "negative": [9, 9, 9]}]
    (tmp_path / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    rc = main(["eval", str(folder), "--bench", f"mine={tmp_path / 'pairs.jsonl'}",
               "--out", str(tmp_path / "out"), "--batch-tokens", "32", "--device", "cpu"])
    assert rc == 0
    assert "mine" in capsys.readouterr().out
    got = [json.loads(x) for x in (tmp_path / "out/mine_pairs.jsonl").read_text().splitlines()]
    seq = np.array([vocab.bos_id, *vocab.encode_units([1, 2, 3]), vocab.eos_id])  # deduplicated
    assert got[0]["n_tokens_pos"] == 5
    want = token_logprobs(model, [seq])[0].mean()
    assert got[0]["logp_pos_mean"] == pytest.approx(want, abs=1e-5)
    assert main(["eval", str(folder), "--out", str(tmp_path / "o")]) == 1  # no --bench
