import gzip
import json

import pytest

from slamlm.io import (
    CutLineError,
    FailureLog,
    JsonlAppender,
    ManifestError,
    atomic_dir,
    read_jsonl,
    read_user_jsonl,
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


def test_read_jsonl_streams_instead_of_reading_the_whole_file(tmp_path):
    p = tmp_path / "big.jsonl"
    p.write_text('{"id": 0}\n{"id": oops}\n')
    it = read_jsonl(p)
    assert next(it) == {"id": 0}  # yielded before the bad line 2 is even read
    with pytest.raises(ManifestError, match="line 2"):
        next(it)
    p.write_text('{"id": 0}\r\n{"id": 1}\r{"id": 2}')  # universal newlines, complete last line
    assert [r["id"] for r in read_jsonl(p, cut_tail="error")] == [0, 1, 2]


def test_read_user_jsonl_reports_or_refuses_a_cut_line(tmp_path):
    p = tmp_path / "units.jsonl"
    p.write_text('{"id": "a"}\n{"id": "b"}\n{"id": "c", "un')
    with pytest.raises(CutLineError, match=r"units.jsonl line 3: last line is cut off.*fix it"):
        list(read_user_jsonl(p, None, "fix it"))
    fails = FailureLog(tmp_path / "failures.jsonl", stage="pack")
    assert [r["id"] for r in read_user_jsonl(p, fails, "fix it")] == ["a", "b"]
    rec = json.loads((tmp_path / "failures.jsonl").read_text())
    assert rec["id"] == "units.jsonl:line 3" and "cut off" in rec["reason"] and fails.count == 1


def test_appender_repair_reads_the_tail_only_and_handles_long_lines(tmp_path):
    p = tmp_path / "out.jsonl"
    long = json.dumps({"id": "x", "units": list(range(40_000))})  # > one 64 KiB tail block
    p.write_text(long + "\n" + long[:100_000])
    JsonlAppender.repair(p)
    assert p.read_text() == long + "\n"
    p.write_text(long[:150_000])  # no newline at all: nothing complete to keep
    JsonlAppender.repair(p)
    assert p.read_bytes() == b""


def test_write_jsonl_streams_a_generator_with_the_same_bytes(tmp_path):
    recs = [{"id": i, "units": list(range(i % 7))} for i in range(3000)]
    text = "".join(json.dumps(r) + "\n" for r in recs).encode()
    p = write_jsonl(tmp_path / "a.jsonl.gz", (r for r in recs))
    assert p.read_bytes() == gzip.compress(text, mtime=0)  # deterministic, as before
    assert write_jsonl(tmp_path / "a.jsonl", iter(recs)).read_bytes() == text
    assert [x.name for x in tmp_path.iterdir() if x.name.startswith(".")] == []


def test_atomic_file_appears_only_when_the_block_succeeds(tmp_path):
    from slamlm.io import atomic_file

    target = tmp_path / "sub" / "out.bin"
    with atomic_file(target) as f:
        f.write(b"abc")
    assert target.read_bytes() == b"abc"
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_file(target) as f:
            f.write(b"half")
            raise RuntimeError("boom")
    assert target.read_bytes() == b"abc"  # the old file is untouched
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.bin"]  # no temp left
