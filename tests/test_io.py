import gzip
import json

import pytest

from slamlm.io import (
    FailureLog,
    JsonlAppender,
    ManifestError,
    atomic_dir,
    read_jsonl,
    write_jsonl,
)


def test_jsonl_roundtrip_plain_and_gz(tmp_path):
    recs = [{"id": f"r{i}", "units": list(range(i))} for i in range(5)]
    for name in ("a.jsonl", "a.jsonl.gz"):
        p = write_jsonl(tmp_path / name, recs)
        assert list(read_jsonl(p)) == recs
    assert gzip.decompress((tmp_path / "a.jsonl.gz").read_bytes()).count(b"\n") == 5


def test_malformed_line_is_named(tmp_path):
    p = tmp_path / "m.jsonl"
    p.write_text('{"id": 1}\n{"id": oops}\n{"id": 3}\n')
    with pytest.raises(ManifestError, match=r"m.jsonl line 2: not valid JSON"):
        list(read_jsonl(p))
    assert [r["id"] for r in read_jsonl(p, skip_bad=True)] == [1, 3]
    p.write_text('{"id": 1}\n[1, 2]\n')
    with pytest.raises(ManifestError, match="line 2: expected a JSON object"):
        list(read_jsonl(p))


def test_appender_repairs_partial_last_line(tmp_path):
    p = tmp_path / "out.jsonl"
    with JsonlAppender(p) as app:
        app.write({"id": "a"})
    with open(p, "a") as f:
        f.write('{"id": "b", "uni')  # killed mid-write
    assert [r["id"] for r in read_jsonl(p)] == ["a"]
    with JsonlAppender(p) as app:
        app.write({"id": "c"})
    assert [json.loads(x)["id"] for x in p.read_text().splitlines()] == ["a", "c"]


def test_atomic_dir_leaves_nothing_on_error(tmp_path):
    final = tmp_path / "ckpt"
    with pytest.raises(RuntimeError):
        with atomic_dir(final) as d:
            (d / "model.bin").write_text("half")
            raise RuntimeError("killed")
    assert not final.exists() and list(tmp_path.iterdir()) == []
    with atomic_dir(final) as d:
        (d / "model.bin").write_text("full")
    assert (final / "model.bin").read_text() == "full"


def test_failure_log_dedups_and_strict(tmp_path):
    log = FailureLog(tmp_path / "failures.jsonl", stage="units")
    log.add("x", "x.wav", "empty")
    log.add("x", "x.wav", "empty")
    again = FailureLog(tmp_path / "failures.jsonl", stage="units")
    assert again.known() == {"x"}
    assert len((tmp_path / "failures.jsonl").read_text().splitlines()) == 1
    with pytest.raises(ValueError, match="y.wav: broken"):
        FailureLog(tmp_path / "f2.jsonl", "units", strict=True).add("y", "y.wav", "broken")
