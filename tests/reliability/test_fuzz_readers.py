"""Property-based fuzzing of every reader a user's file enters through (issue #16).

Each reader gets a valid seed file, then hypothesis mutates it: random truncation, byte flips,
random bytes, an empty file, a folder in its place, and for JSON records missing keys, extra
keys and values of the wrong type. For every generated case the reader must either

* raise a clear error (a ``ValueError`` subclass such as ConfigError/ManifestError/
  CheckpointError, ``FileNotFoundError`` or ``OSError``) whose message names the file, or
* return, with no record silently lost (or the bad one reported into failures.jsonl),

and never anything else (TypeError, KeyError, IndexError, UnicodeDecodeError, struct.error,
safetensors' own errors...). Outputs written before stay byte-for-byte unchanged.
Settings are small and derandomized so the file is fast and deterministic.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability_helpers import tree_hashes

from slamlm.io import CutLineError, FailureLog

# SLAM_FUZZ_EXAMPLES=500 (and SLAM_FUZZ_RANDOM=1 for fresh cases) hunts harder, locally
FUZZ = settings(max_examples=int(os.environ.get("SLAM_FUZZ_EXAMPLES", 40)), deadline=None,
                derandomize=not os.environ.get("SLAM_FUZZ_RANDOM"), database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
CLEAR = (ValueError, FileNotFoundError, OSError)
NOT_CLEAR = (UnicodeError, json.JSONDecodeError)  # ValueError subclasses that name no file
COUNTS: Counter = Counter()
_ids = itertools.count()


@pytest.fixture(scope="module", autouse=True)
def _report():
    yield
    total = sum(v for k, v in COUNTS.items() if k.endswith(":cases"))
    lines = [f"fuzz readers: {total} cases"] + [f"  {k} = {v}" for k, v in sorted(COUNTS.items())]
    print("\n".join(lines))  # shown with -rA or -s
    if os.environ.get("SLAM_FUZZ_REPORT"):  # a JSON record of the counts
        Path(os.environ["SLAM_FUZZ_REPORT"]).write_text(json.dumps(dict(COUNTS), indent=1))


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def fresh(base: Path) -> Path:
    d = base / f"case{next(_ids):05d}"
    d.mkdir()
    return d


def check(reader: str, fn: Callable[[], Any], name: str) -> tuple[str, Any]:
    """Run ``fn``; a clear error must name ``name``. Returns ("error", exc) or ("ok", result)."""
    COUNTS[f"{reader}:cases"] += 1
    try:
        out = fn()
    except NOT_CLEAR as e:
        raise AssertionError(f"{reader}: unclear {type(e).__name__}: {e}") from e
    except CLEAR as e:
        assert name in str(e), f"{reader}: error does not name {name!r}: {type(e).__name__}: {e}"
        COUNTS[f"{reader}:error"] += 1
        if os.environ.get("SLAM_FUZZ_SHOW"):
            print(f"{reader}: {type(e).__name__}: {e}")
        return "error", e
    COUNTS[f"{reader}:ok"] += 1
    return "ok", out


# ------------------------------------------------------------------------ mutation strategies
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats(allow_nan=True)
    | st.text(max_size=8),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=4), c, max_size=3),
    max_leaves=6)


@st.composite
def byte_mutation(draw, data: bytes) -> bytes:
    kind = draw(st.sampled_from(["truncate", "flip", "random", "empty", "append"]))
    if kind == "empty":
        return b""
    if kind == "random":
        return draw(st.binary(min_size=1, max_size=200))
    if kind == "append":
        return data + draw(st.binary(min_size=1, max_size=40))
    if kind == "truncate":
        return data[: draw(st.integers(0, max(len(data) - 1, 0)))]
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(out) - 1))
        out[i] = draw(st.integers(0, 255))
    return bytes(out)


@st.composite
def record_mutation(draw, rec: dict) -> dict:
    """Drop, add, or retype a key (recursively into dict values), retype one list element,
    or put a senseless number (zero, negative, huge, fractional, NaN) in a numeric field."""
    rec = json.loads(json.dumps(rec))
    kind = draw(st.sampled_from(["drop", "extra", "retype", "retype_nested", "element",
                                 "nonsense"]))
    keys = sorted(rec)
    lists = [k for k in keys if isinstance(rec[k], list) and rec[k]]
    numbers = [k for k in keys if isinstance(rec[k], (int, float)) and not isinstance(rec[k], bool)]
    if kind == "element" and lists:
        k = draw(st.sampled_from(lists))
        rec[k][draw(st.integers(0, len(rec[k]) - 1))] = draw(
            JSON_VALUES | st.sampled_from([-1, 2**31, 2**64, 1.5, True]))
    elif kind == "nonsense" and numbers:
        rec[draw(st.sampled_from(numbers))] = draw(st.sampled_from(
            [0, -1, -(2**33), 2**63, 2**70, 0.5, float("nan"), float("inf")]))
    elif kind == "drop" and keys:
        rec.pop(draw(st.sampled_from(keys)))
    elif kind == "extra":
        rec[draw(st.text(min_size=1, max_size=6))] = draw(JSON_VALUES)
    elif kind == "retype_nested":
        nested = [k for k in keys if isinstance(rec[k], dict) and rec[k]]
        if nested:
            k = draw(st.sampled_from(nested))
            rec[k] = draw(record_mutation(rec[k]))
        elif keys:
            rec[draw(st.sampled_from(keys))] = draw(JSON_VALUES)
    elif keys:
        rec[draw(st.sampled_from(keys))] = draw(JSON_VALUES)
    return rec


def jsonl_bytes(records: list[dict]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


@st.composite
def jsonl_mutation(draw, records: list[dict]) -> bytes:
    """A JSONL file: one record mutated, a duplicated/colliding record, or bytes mutated."""
    kind = draw(st.sampled_from(["record", "record", "bytes", "collide", "non_object"]))
    recs = [dict(r) for r in records]
    if kind == "bytes":
        return draw(byte_mutation(jsonl_bytes(recs)))
    i = draw(st.integers(0, len(recs) - 1))
    if kind == "record":
        recs[i] = draw(record_mutation(recs[i]))
    elif kind == "collide":
        recs.append(draw(record_mutation(recs[i])) if draw(st.booleans()) else dict(recs[i]))
    else:
        recs[i] = draw(JSON_VALUES.filter(lambda v: not isinstance(v, dict)))
    return jsonl_bytes(recs)


def place(path: Path, content: bytes | None) -> None:
    """Write ``content``; ``None`` puts a folder where the file should be."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if content is None:
        path.mkdir()
        (path / "x").write_text("not me")
    else:
        path.write_bytes(content)


def maybe_folder(strategy):
    return st.one_of(strategy, strategy, strategy, strategy, st.none())


def complete_lines(data: bytes | None) -> int:
    if data is None:
        return 0
    """Lines as the readers count them: universal newlines (\n, \r\n, \r), nothing else."""
    text = data.decode("utf-8", "replace").replace("\r\n", "\n").replace("\r", "\n")
    return sum(1 for ln in text.split("\n") if ln.strip())


# ------------------------------------------------------------------------------- units files
UNITS = [{"id": f"u{i}", "path": f"u{i}.wav", "units": [1, 2, 3 + i], "durations": [1, 1, 2],
          "n_frames": 4, "sr": 16000, "encoder": "mel", "kmeans_hash": None} for i in range(2)]


@FUZZ
@given(content=maybe_folder(jsonl_mutation(UNITS)),
       gz=st.sampled_from([None, "gzip", "gz_bytes"]), data=st.data())
def test_fuzz_read_units(base, content, gz, data):
    import gzip

    from slamlm.units.runner import read_units

    d = fresh(base)
    name = "units.jsonl.gz" if gz else "units.jsonl"
    if gz == "gz_bytes":  # a mutated gzip stream (records intact before compression)
        content = data.draw(byte_mutation(gzip.compress(jsonl_bytes(UNITS), mtime=0)))
    raw = content
    if gz == "gzip" and content is not None:
        raw = gzip.compress(content, mtime=0)
    place(d / name, raw)
    status, out = check("read_units", lambda: list(read_units(d)), name)
    if gz == "gz_bytes":
        if status == "ok":
            assert out in ([], UNITS) or len(out) <= len(UNITS)
        return
    if status == "ok":  # a cut last line is an error here (or a failures.jsonl record)
        assert all(isinstance(r, dict) for r in out)
        assert len(out) == complete_lines(content), "a record was dropped silently"
    elif isinstance(out, CutLineError):
        assert not content.endswith(b"\n") and "last line is cut off" in str(out)
        COUNTS["read_units:cut_line_error"] += 1


PEER = [{"file_name": f"a{i}.wav", "units": [1, 2, 3], "duration": [1, 2, 1]} for i in range(2)]
PEER_TOKENS = [{"file_name": f"b{i}.wav", "audio_repr": "<Un3><Un49>"} for i in range(2)]


@FUZZ
@given(content=maybe_folder(jsonl_mutation(PEER) | jsonl_mutation(PEER_TOKENS)))
def test_fuzz_import_peer(base, content):
    from slamlm.units.peer import import_peer

    d = fresh(base)
    (d / "out").mkdir()
    (d / "out" / "units.jsonl").write_text('{"id": "earlier"}\n')
    before = tree_hashes(d / "out")
    place(d / "features.jsonl", content)
    status, _ = check("import_peer", lambda: import_peer(d / "features.jsonl", d / "out"),
                      "features.jsonl")
    if status == "error":
        assert tree_hashes(d / "out") == before
    else:
        rows = [json.loads(x) for x in (d / "out" / "units.jsonl").read_text().splitlines()]
        assert len(rows) == complete_lines(content), "a record was dropped silently"
        assert all(isinstance(u, int) for r in rows for u in r["units"])


# ------------------------------------------------------------------------------ input lists
MANIFEST = [{"id": f"s{i}", "path": f"s{i}.wav"} for i in range(3)]


@FUZZ
@given(content=maybe_folder(jsonl_mutation(MANIFEST)), txt=st.booleans(),
       tbytes=byte_mutation(b"a.wav\nsub/b.wav\n"))
def test_fuzz_list_inputs(base, content, txt, tbytes):
    from slamlm.units.inputs import list_inputs

    d = fresh(base)
    name = "list.txt" if txt else "manifest.jsonl"
    if txt:
        content = tbytes
    place(d / name, content)
    status, out = check("list_inputs", lambda: list_inputs(d / name), name)
    if status == "ok" and content is not None:
        assert len(out) == complete_lines(content), "a record was dropped silently"
        assert all(isinstance(it.id, str) and it.id and isinstance(it.path, str) for it in out)
        if not txt:  # a given id is a string (or int), never a list/dict/bool stringified
            ids = [json.loads(x).get("id") for x in content.decode().split("\n") if x.strip()]
            assert all(i is None or (isinstance(i, (str, int)) and not isinstance(i, bool))
                       for i in ids), ids


# ------------------------------------------------------------------------------ token shards
@pytest.fixture(scope="module")
def tokens(base) -> Path:
    from reliability_helpers import synthetic_tokens

    return synthetic_tokens(base / "tok_seed", 12, seed=0)


@FUZZ
@given(which=st.sampled_from(["index.json", "index_json", "train.bin", "train.docs.npy"]),
       data=st.data())
def test_fuzz_token_shard(base, tokens, which, data):
    from slamlm.data.shards import TokenShard

    d = fresh(base) / "tokens"
    shutil.copytree(tokens, d)
    index = json.loads((d / "index.json").read_text())
    meta = index["splits"]["train"]
    name = {"train.bin": meta["file"], "train.docs.npy": meta["docs"]}.get(which, "index.json")
    if which == "index_json":
        content = json.dumps(data.draw(record_mutation(index))).encode()
    else:
        content = data.draw(maybe_folder(byte_mutation((d / name).read_bytes())))
    target = d / name
    if target.is_dir():
        shutil.rmtree(target)
    else:
        target.unlink()
    place(target, content)

    def open_all():
        s = TokenShard.open(d, "train")
        return [s.doc(i) for i in range(s.n_docs)]

    check("TokenShard.open", open_all, Path(name).name if which != "index_json" else d.name)


# ---------------------------------------------------------------------------------- k-means
@pytest.fixture(scope="module")
def kmeans_files(base) -> dict[str, bytes]:
    from slamlm.units.kmeans import KMeans, save_kmeans

    torch.manual_seed(0)
    p = save_kmeans(KMeans(torch.randn(8, 4), encoder="mel", layer=None), base / "km.safetensors")
    out = {"km.safetensors": p.read_bytes()}
    try:
        import joblib
        from sklearn.cluster import KMeans as SK

        sk = SK(n_clusters=3, n_init=1, random_state=0).fit(np.random.default_rng(0).normal(
            size=(30, 4)))
        joblib.dump(sk, base / "km.bin")
        out["km.bin"] = (base / "km.bin").read_bytes()
    except ImportError:
        pass
    return out


@FUZZ
@given(data=st.data())
def test_fuzz_load_kmeans(base, kmeans_files, data):
    from slamlm.units.kmeans import load_kmeans

    name = data.draw(st.sampled_from(sorted(kmeans_files)))
    content = data.draw(maybe_folder(byte_mutation(kmeans_files[name])))
    d = fresh(base)
    place(d / name, content)
    status, km = check("load_kmeans", lambda: load_kmeans(d / name), name)
    if status == "ok":
        assert km.centroids.ndim == 2 and km.k > 0 and km.dim > 0


# ------------------------------------------------------------------------------ checkpoints
@pytest.fixture(scope="module")
def checkpoint(base) -> Path:
    from slamlm.model.init import InitConfig, run_init

    return run_init(InitConfig(out=str(base / "ckpt_seed"), shape="tiny", units=20))


@FUZZ
@given(which=st.sampled_from(["config_bytes", "config_keys", "weights"]), data=st.data())
def test_fuzz_checkpoint(base, checkpoint, which, data):
    from slamlm.model.checkpoint import load_checkpoint, read_meta

    d = fresh(base) / "ckpt"
    shutil.copytree(checkpoint, d)
    if which == "weights":
        name = "model.safetensors"
        content = data.draw(maybe_folder(byte_mutation((d / name).read_bytes())))
    else:
        name = "config.json"
        raw = (d / name).read_bytes()
        content = (data.draw(maybe_folder(byte_mutation(raw))) if which == "config_bytes"
                   else json.dumps(data.draw(record_mutation(json.loads(raw)))).encode())
    (d / name).unlink()
    place(d / name, content)
    before = tree_hashes(d)
    check("read_meta", lambda: read_meta(d), str(d.name))
    check("load_checkpoint", lambda: load_checkpoint(d), str(d.name))
    assert tree_hashes(d) == before


# ------------------------------------------------------------------------------ DPO triplets
TRIPLETS = [{"id": f"t{i}", "prompt_units": [1, 2], "chosen_units": [3, 4, 5],
             "rejected_units": [5, 5, 5]} for i in range(3)]


@FUZZ
@given(content=maybe_folder(jsonl_mutation(TRIPLETS)), skip=st.booleans())
def test_fuzz_load_triplets(base, content, skip):
    from slamlm.align.data import load_triplets
    from slamlm.vocab import UnitVocab

    d = fresh(base)
    place(d / "triplets.jsonl", content)
    fails = FailureLog(d / "failures.jsonl", stage="dpo") if skip else None
    status, out = check("load_triplets",
                        lambda: load_triplets(d / "triplets.jsonl", UnitVocab(n_units=20),
                                              failures=fails), "triplets.jsonl")
    if status == "ok":
        pairs, summary = out
        assert summary.n_records == complete_lines(content)
        assert len(pairs) + summary.n_failed + summary.n_repetitive == summary.n_records
        if fails is not None:
            assert fails.count == summary.n_failed


# -------------------------------------------------------------------------- benchmark folders
GOLD = ("id,filename,voice,frequency,word,phones,length,correct\n"
        "1,a,v,1,w,p,1,1\n1,b,v,1,x,p,1,0\n")


@FUZZ
@given(content=maybe_folder(byte_mutation(GOLD.encode())))
def test_fuzz_zr2021_gold(base, content):
    import soundfile as sf

    from slamlm.eval.readers import read_benchmark

    root = fresh(base)
    d = root / "lexical" / "dev"
    d.mkdir(parents=True)
    for n in "ab":
        sf.write(d / f"{n}.wav", np.zeros(1600, np.float32), 16000)
    place(d / "gold.csv", content)
    check("read_benchmark", lambda: read_benchmark(root, name="swuggy"), "gold.csv")


# ----------------------------------------------------------------------------------- configs
CONFIG_YAML = b"out: run/x\ndevice: cpu\ntrain:\n  lr: 0.001\n  batch_size: 4\n"


@FUZZ
@given(content=maybe_folder(byte_mutation(CONFIG_YAML)), build=st.booleans())
def test_fuzz_config(base, content, build):
    from slamlm.config import build_config, load_yaml
    from slamlm.train import PretrainConfig

    d = fresh(base)
    place(d / "cfg.yaml", content)
    fn = ((lambda: build_config(PretrainConfig, config_file=d / "cfg.yaml")) if build
          else (lambda: load_yaml(d / "cfg.yaml")))
    check("build_config" if build else "load_yaml", fn, "cfg.yaml")


# ------------------------------------------------------------------------- synth user text
@FUZZ
@given(jsonl=st.booleans(), jcontent=maybe_folder(jsonl_mutation([{"text": "One story."},
                                                                  {"text": "Two."}])),
       tcontent=maybe_folder(byte_mutation(b"One story here.\n\nAnother one.\n")))
def test_fuzz_synth_user_text(base, jsonl, jcontent, tcontent):
    from slamlm.synth.stories import read_user_text

    d = fresh(base)
    name, content = ("mine.jsonl", jcontent) if jsonl else ("mine.txt", tcontent)
    place(d / name, content)
    status, out = check("read_user_text", lambda: read_user_text(d / name), name)
    if status == "ok":
        assert out and all(isinstance(t, str) and t for t in out), "no usable text, no error"
        if jsonl:
            assert len(out) == complete_lines(content), "a record was dropped silently"


# ------------------------------------------------------------------ pairs.jsonl benchmarks
PAIRS = [{"id": f"p{i}", "positive": [1, 2, 3], "negative": [3, 2, 1], "group": {"g": "a"}}
         for i in range(3)]


@FUZZ
@given(content=maybe_folder(jsonl_mutation(PAIRS)))
def test_fuzz_pairs_manifest(base, content):
    from slamlm.eval.readers import read_benchmark

    d = fresh(base)
    place(d / "pairs.jsonl", content)
    status, out = check("read_benchmark(pairs.jsonl)", lambda: read_benchmark(d), "pairs.jsonl")
    if status == "ok" and content is not None:
        assert len(out.pairs) == complete_lines(content), "a pair was dropped silently"


# -------------------------------------------------------------- config structure (YAML keys)
CONFIG_DICT = {"out": "run/x", "device": "cpu",
               "train": {"lr": 0.001, "batch_size": 4, "micro_batch": 2, "max_steps": 10},
               "data": {"tokens": "run/tokens", "context": 32}}


@FUZZ
@given(cfg=record_mutation(CONFIG_DICT))
def test_fuzz_config_keys(base, cfg):
    import yaml

    from slamlm.config import build_config
    from slamlm.train import PretrainConfig

    d = fresh(base)
    (d / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    check("build_config(keys)", lambda: build_config(PretrainConfig, config_file=d / "cfg.yaml"),
          "cfg.yaml")


# --------------------------------------------- end to end: `slam pack` on a mutated units file
def _slam(argv: list[str]) -> tuple[int, str]:
    """Run the CLI in-process; anything it does not turn into ``error:`` propagates (a bug)."""
    import contextlib
    import io

    from slamlm.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            rc = main(["-q", *argv])
        except SystemExit as e:
            rc = int(e.code or 0)
    return rc, err.getvalue()


def _pack_records() -> list[dict]:
    from slamlm.data.synthetic import synthetic_records

    return synthetic_records(4, k=40, mean_len=12, seed=0)


@FUZZ
@given(content=jsonl_mutation(_pack_records()))
def test_fuzz_slam_pack(base, content):
    d = fresh(base)
    place(d / "units" / "part.jsonl", content)
    COUNTS["slam pack:cases"] += 1
    rc, err = _slam(["pack", str(d / "units"), "--out", str(d / "tok"), "--n-units", "40",
                     "--context", "16", "--val-fraction", "0.25"])
    if rc != 0:
        COUNTS["slam pack:error"] += 1
        assert rc == 1 and "slam pack: error:" in err and "Traceback" not in err, err
        assert "part.jsonl" in err or "units" in err, err
        assert not (d / "tok" / "index.json").exists(), "half-written output looks complete"
        return
    COUNTS["slam pack:ok"] += 1
    index = json.loads((d / "tok" / "index.json").read_text())
    fails = d / "tok_failures.jsonl"
    n_fail = complete_lines(fails.read_bytes()) if fails.exists() else 0
    assert index.get("n_failures", 0) == n_fail
    if n_fail:
        COUNTS["slam pack:reported_skip"] += n_fail
