"""slam synth benchmarks: layouts, gold files, pairing; slam synth preferences."""

from __future__ import annotations

import csv
from collections import Counter

import pytest
import soundfile as sf

from slamlm.cli import main
from slamlm.io import read_jsonl
from slamlm.synth.bench_items import known_words, wuggy_items


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "b"
    assert main(["-q", "synth", "benchmarks", "--out", str(out), "--n", "4", "--workers", "2"]) == 0
    return out


@pytest.mark.parametrize("kind,cols", [
    ("lexical", ["id", "filename", "voice", "frequency", "word", "phones", "length", "correct"]),
    ("syntactic", ["filename", "type", "subtype", "id", "voice", "correct", "transcription"]),
])
def test_gold_files_parse_and_pair(bench, kind, cols):
    folder = bench / kind / "dev"
    with open(folder / "gold.csv", newline="") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == cols
        rows = list(reader)
    assert len({r["id"] for r in rows}) == 4
    per = Counter((r["id"], r["voice"], r["correct"]) for r in rows)
    keys = {(r["id"], r["voice"]) for r in rows}
    assert len(keys) == 8  # 2 voices per item
    for k in keys:
        assert per[(*k, "1")] == 1 and per[(*k, "0")] == 1
    for r in rows:
        info = sf.info(str(folder / f"{r['filename']}.wav"))
        assert info.samplerate == 16000 and info.frames > 1600
    if kind == "syntactic":
        assert len({r["type"] for r in rows}) == 4
        by = {(r["id"], r["voice"], r["correct"]): r["transcription"] for r in rows}
        assert all(by[(i, v, "1")] != by[(i, v, "0")] for i, v in keys)


def test_cloze_and_salmon_layouts(bench):
    for kind in ("sSC", "tSC"):
        pairs = list(read_jsonl(bench / kind / "pairs.jsonl"))
        assert [p["id"] for p in pairs] == ["0", "1", "2", "3"]
        for p in pairs:
            assert p["positive"] == f"{p['id']}_correct.wav" and (bench / kind / p["negative"]).is_file()
    for part in ("speaker_consistency", "gender_consistency"):
        files = sorted(p.name for p in (bench / "salmon" / part).iterdir())
        assert files == [f"sample_{i}_{j}.wav" for i in range(4) for j in (0, 1)]
    assert not (bench / "_parts").exists()
    texts = list(read_jsonl(bench / "texts.jsonl"))
    assert Counter(t["bench"] for t in texts) == {"lexical": 16, "syntactic": 16, "sSC": 8,
                                                  "tSC": 8, "salmon": 16}
    sal = [t for t in texts if t["bench"] == "salmon" and "gender" in t["id"] and t["correct"] == 0]
    assert all(len(set(t["voice"].split("|"))) == 2 for t in sal)


def test_eval_readers_accept_our_layouts(bench):
    readers = pytest.importorskip("slamlm.eval.readers")
    assert len(readers.read_benchmark(bench, "sWUGGY").pairs) == 8
    assert len(readers.read_benchmark(bench, "sBLIMP").pairs) == 8
    assert len(readers.read_benchmark(bench / "sSC").pairs) == 4
    assert len(readers.read_benchmark(bench / "salmon").pairs) == 8


def test_nonwords_are_not_words():
    for it in wuggy_items(200):
        assert it["bad"] not in known_words() and it["good"] in known_words()
        assert abs(len(it["bad"]) - len(it["good"])) <= 2


def test_cli_preferences(tmp_path):
    out = tmp_path / "p"
    assert main(["-q", "synth", "preferences", "--n", "3", "--out", str(out), "--workers", "1"]) == 0
    recs = list(read_jsonl(out / "triplets.jsonl"))
    assert [r["rejected_kind"] for r in recs] == ["repetitive", "incoherent", "off_topic"]
    for r in recs:
        assert r["chosen_text"] != r["rejected_text"]
        for role in ("prompt", "chosen", "rejected"):
            assert sf.info(str(out / r[f"{role}_path"])).samplerate == 16000
    mtime = (out / recs[0]["chosen_path"]).stat().st_mtime_ns
    assert main(["-q", "synth", "preferences", "--n", "3", "--out", str(out), "--workers", "1"]) == 0
    assert (out / recs[0]["chosen_path"]).stat().st_mtime_ns == mtime  # resumed, not redone


def test_pairs_are_length_matched(bench):
    recs = list(read_jsonl(bench / "length_match.jsonl"))
    assert Counter(r["bench"] for r in recs) == {"lexical": 4, "syntactic": 4, "sSC": 4, "tSC": 4,
                                                 "salmon": 8}
    for r in recs:
        assert len(r["pos_s"]) == len(r["neg_s"]) == 1
        assert r.get("options", 1) >= 1 and (r["bench"] != "salmon" or r["rate"] > 0)
        # the best of several options: far closer than the spread of the options themselves
        limit = 0.25 if r["bench"] in ("sSC", "tSC") else 0.12
        assert abs(r["gap_s"]) <= limit, r
    # the measured durations are those of the files (same voice, rate, deterministic engine)
    from slamlm.audio import load_audio
    from slamlm.synth.matching import speech_seconds

    rows = list(csv.DictReader(open(bench / "lexical/dev/gold.csv", newline="")))
    for r in recs:
        if r["bench"] != "lexical":
            continue
        first = next(x["voice"] for x in rows if x["id"] == r["id"])
        files = {x["correct"]: x["filename"] for x in rows if x["id"] == r["id"] and x["voice"] == first}
        secs = [speech_seconds(load_audio(bench / "lexical/dev" / f"{files[c]}.wav")) for c in "10"]
        assert secs == pytest.approx([r["pos_s"][0], r["neg_s"][0]], abs=0.011)


def test_lexical_gold_has_espeak_phones(bench):
    rows = list(csv.DictReader(open(bench / "lexical/dev/gold.csv", newline="")))
    by = {(r["id"], r["voice"], r["correct"]): r for r in rows}
    for (i, v, c), r in by.items():
        assert int(r["length"]) == len(r["phones"].split()) > 0
        if c == "1":  # a non-word with as many phones as its word (the options allow it here)
            assert r["length"] == by[(i, v, "0")]["length"], (r["word"], by[(i, v, "0")]["word"])


def test_rerun_with_same_settings_does_nothing(tmp_path):
    from slamlm.synth.benchmarks import BenchConfig, is_done, run_benchmarks

    cfg = BenchConfig(out=str(tmp_path / "b"), n=2, workers=1, benchmarks=("sSC",))
    run_benchmarks(cfg)
    f = tmp_path / "b/sSC/0_correct.wav"
    mtime = f.stat().st_mtime_ns
    assert is_done(cfg) and run_benchmarks(cfg) == tmp_path / "b"
    assert f.stat().st_mtime_ns == mtime  # not rebuilt, so the eval unit cache stays valid
    more = BenchConfig(out=cfg.out, n=3, workers=2, benchmarks=("sSC",))
    assert not is_done(more)  # other settings (not the worker count): rebuilt
    run_benchmarks(more)
    assert (tmp_path / "b/sSC/2_correct.wav").is_file()


@pytest.fixture(scope="module")
def mel_units(tmp_path_factory):
    """A ``slam units``-like folder: identity.json of a mel encoder + a random k-means."""
    import json

    import torch

    from slamlm.units.extractor import UnitExtractor
    from slamlm.units.kmeans import KMeans, save_kmeans

    d = tmp_path_factory.mktemp("units")
    torch.manual_seed(0)
    save_kmeans(KMeans(torch.randn(12, 80) * 2, encoder="mel", layer=0), d / "km.safetensors")
    ex = UnitExtractor.load("mel", d / "km.safetensors")
    (d / "identity.json").write_text(json.dumps(ex.identity()))
    return d, ex


def test_benchmarks_matched_in_units_of_a_units_folder(tmp_path, mel_units):
    from slamlm.synth.benchmarks import BenchConfig, is_done, run_benchmarks
    from slamlm.units.extractor import dedup

    folder, ex = mel_units
    cfg = BenchConfig(out=str(tmp_path / "b"), n=3, workers=2, benchmarks=("lexical",),
                      match_units=str(folder))
    out = run_benchmarks(cfg)
    recs = list(read_jsonl(out / "length_match.jsonl"))
    assert len(recs) == 3 and all(len(r["pos_units"]) == 2 for r in recs)  # 2 voices each
    rows = list(csv.DictReader(open(out / "lexical/dev/gold.csv", newline="")))
    for r in recs:  # the counts are those of the written files, as the eval will see them
        for voice, pos, neg in zip(r["unit_voices"], r["pos_units"], r["neg_units"]):
            fn = next(x["filename"] for x in rows if x["id"] == r["id"] and x["voice"] == voice)
            base = out / "lexical/dev" / fn.rsplit("_", 1)[0]
            got = [len(dedup(u)[0]) for u in ex.encode_paths([f"{base}_1.wav", f"{base}_0.wav"])]
            assert got == [pos, neg]
    # the units it counted, for the eval's unit cache: keyed by each file's content, equal to
    # what the eval would encode from that file
    from slamlm.eval.unitcache import UnitCache, encode_cached
    from slamlm.io import file_sha1
    from slamlm.units.identity import unit_cache_name

    seeds = list(read_jsonl(out / unit_cache_name(ex.identity())))
    wavs = sorted((out / "lexical/dev").glob("*.wav"))
    assert len(seeds) == len(wavs) == 12  # 3 items x 2 voices x (word, non-word)
    for row in seeds:
        wav = out / row["path"]
        assert file_sha1(wav) == row["sha1"]
        assert row["units"] == dedup(ex.encode_paths([wav])[0])[0].tolist()
    cache = UnitCache(tmp_path / "cache", ex.identity(), seeds=[out])
    ex_calls = []
    ex.encode_paths, orig = (lambda ps: ex_calls.append(ps) or orig(ps)), ex.encode_paths
    try:
        encode_cached(ex, [str(w) for w in wavs], cache)
    finally:
        ex.encode_paths = orig
    assert ex_calls == [] and cache.seeded == 12 and cache.hits == 12
    # benchmarks the matching does not count in units are counted as they are written
    cfg2 = BenchConfig(out=str(tmp_path / "b2"), n=2, workers=2, benchmarks=("lexical", "sSC"),
                       match_units=str(folder))
    out2 = run_benchmarks(cfg2)
    texts = list(read_jsonl(out2 / "texts.jsonl"))
    seeds2 = {r["sha1"]: r for r in read_jsonl(out2 / unit_cache_name(ex.identity()))}
    assert {t["bench"] for t in texts} == {"lexical", "sSC"}
    for t in texts:
        row = seeds2[file_sha1(out2 / t["path"])]
        assert row["units"] == dedup(ex.encode_paths([out2 / t["path"]])[0])[0].tolist()
    assert not (tmp_path / "cache").exists()  # seeds are read, never copied
    assert is_done(cfg)
    import json

    ident = json.loads((folder / "identity.json").read_text())
    (folder / "identity.json").write_text(json.dumps({**ident, "kmeans_hash": "refit"}))
    try:
        assert not is_done(cfg)  # other units: the benchmarks are rebuilt
    finally:
        (folder / "identity.json").write_text(json.dumps(ident))


def test_match_units_needs_a_units_identity(tmp_path):
    from slamlm.synth.benchmarks import BenchConfig, run_benchmarks

    (tmp_path / "u").mkdir()
    with pytest.raises(ValueError, match="cannot read the units identity"):
        run_benchmarks(BenchConfig(out=str(tmp_path / "b"), n=1, workers=1,
                                   benchmarks=("lexical",), match_units=str(tmp_path / "u")))
    (tmp_path / "u/identity.json").write_text('{"encoder": "mel"}')
    with pytest.raises(ValueError, match="not a units identity with a k-means"):
        run_benchmarks(BenchConfig(out=str(tmp_path / "b"), n=1, workers=1,
                                   benchmarks=("lexical",), match_units=str(tmp_path / "u")))
    assert not (tmp_path / "b").exists()


def test_sizes_set_items_per_benchmark_and_bad_ones_fail_first(tmp_path):
    from slamlm.synth.benchmarks import BenchConfig, items_of, run_benchmarks

    cfg = BenchConfig(n=5, sizes=("lexical=7",))
    assert items_of("lexical", cfg) == 7 and items_of("syntactic", cfg) == 5
    for bad in ("lexical", "lexical=0", "words=3", "lexical=x"):
        with pytest.raises(ValueError, match="use KIND=N"):
            run_benchmarks(BenchConfig(out=str(tmp_path / "b"), n=1, sizes=(bad,)))
    assert not (tmp_path / "b").exists()
    out = run_benchmarks(BenchConfig(out=str(tmp_path / "c"), n=1, workers=1,
                                     benchmarks=("lexical",), sizes=("lexical=3",)))
    ids = {r["id"] for r in csv.DictReader(open(out / "lexical/dev/gold.csv", newline=""))}
    assert len(ids) == 3
