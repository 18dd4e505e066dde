import os

import numpy as np
import torch
from eval_helpers import write_wav

from slamlm.eval.unitcache import UnitCache, dedup_units, encode_cached
from slamlm.io import FailureLog
from slamlm.units.extractor import UnitExtractor
from slamlm.units.identity import extractor_hash
from slamlm.units.kmeans import KMeans


def make_extractor():
    torch.manual_seed(0)
    return UnitExtractor.load("mel", KMeans(torch.randn(8, 80), encoder="mel", layer=0))


def test_cache_hits_and_invalidation(tmp_path):
    ex = make_extractor()
    calls = []
    orig = ex.encode_paths
    ex.encode_paths = lambda paths: calls.append(list(paths)) or orig(paths)
    paths = [str(write_wav(tmp_path / f"{i}.wav", i)) for i in range(3)]
    first = encode_cached(ex, paths + paths[:1], UnitCache(tmp_path / "c", ex.identity()), 2)
    assert sum(map(len, calls)) == 3  # the repeated path is encoded once
    for p in paths:
        np.testing.assert_array_equal(first[p], dedup_units(orig([p])[0]))
    cache = UnitCache(tmp_path / "c", ex.identity())  # re-opened from disk
    calls.clear()
    again = encode_cached(ex, paths, cache)
    assert calls == [] and cache.hits == 3 and cache.misses == 0
    assert all(np.array_equal(again[p], first[p]) for p in paths)
    write_wav(tmp_path / "1.wav", 99, seconds=0.6)  # replaced file: new size/mtime
    os.utime(paths[1], ns=(1, 1))
    cache = UnitCache(tmp_path / "c", ex.identity())
    encode_cached(ex, paths, cache)
    assert calls == [[paths[1]]] and cache.misses == 1
    # the same bytes written again (a re-run synthesis: new mtime, even a new path) are a hit
    data = open(paths[0], "rb").read()
    os.utime(paths[0], ns=(5, 5))
    copy = tmp_path / "copy_of_0.wav"
    copy.write_bytes(data)
    calls.clear()
    cache = UnitCache(tmp_path / "c", ex.identity())
    encode_cached(ex, [paths[0], str(copy)], cache)
    assert calls == [] and cache.hits == 2


def test_other_extractor_uses_other_cache_file(tmp_path):
    a = make_extractor().identity()
    b = dict(a, kmeans_hash="different")
    assert extractor_hash(a) != extractor_hash(b)
    assert extractor_hash(a) == extractor_hash(dict(a, kmeans_path="/elsewhere/km.safetensors"))


def test_bad_file_recorded_others_kept(tmp_path):
    ex = make_extractor()
    good = [str(write_wav(tmp_path / f"{i}.wav", i)) for i in range(2)]
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio")
    fails = FailureLog(tmp_path / "failures.jsonl", stage="eval")
    out = encode_cached(ex, [good[0], str(bad), good[1]], UnitCache(tmp_path / "c", ex.identity()),
                        batch_size=8, failures=fails)
    assert out[str(bad)] is None and out[good[0]] is not None and out[good[1]] is not None
    assert fails.count == 1 and "bad.wav" in (tmp_path / "failures.jsonl").read_text()


def test_seed_files_are_read_by_content_and_never_written(tmp_path):
    """A benchmark folder's units file (written by slam synth benchmarks --match-units) spares
    the encoding of files whose bytes it names; a file changed since encodes again; rows that
    are not unit lists are ignored."""
    import json

    from slamlm.io import file_sha1
    from slamlm.units.identity import unit_cache_name

    ex = make_extractor()
    paths = [str(write_wav(tmp_path / f"{i}.wav", i)) for i in range(3)]
    truth = {p: dedup_units(ex.encode_paths([p])[0]) for p in paths}
    seed_dir = tmp_path / "bench"
    seed_dir.mkdir()
    rows = [{"sha1": file_sha1(paths[0]), "units": [7, 7, 7]},  # trusted as given
            {"sha1": file_sha1(paths[1]), "units": truth[paths[1]].tolist()},
            {"sha1": file_sha1(paths[2]), "units": "not a list"},
            {"sha1": "0" * 40, "units": [-1]}]
    seed = seed_dir / unit_cache_name(ex.identity())
    seed.write_text("".join(json.dumps(r) + "\n" for r in rows) + "{broken\n")
    before = seed.read_bytes()
    write_wav(tmp_path / "0.wav", 50)  # changed since the seed was written: encoded again
    calls = []
    orig = ex.encode_paths
    ex.encode_paths = lambda ps: calls.append(list(ps)) or orig(ps)
    cache = UnitCache(tmp_path / "c", ex.identity(), seeds=[seed_dir, tmp_path / "missing"])
    assert cache.seeded == 2  # the two well-formed rows
    got = encode_cached(ex, paths, cache)
    assert calls == [[paths[0], paths[2]]]
    np.testing.assert_array_equal(got[paths[1]], truth[paths[1]])
    np.testing.assert_array_equal(got[paths[0]], dedup_units(orig([paths[0]])[0]))
    assert seed.read_bytes() == before
    other = dict(ex.identity(), kmeans_hash="other")  # another extractor: not its file
    assert UnitCache(tmp_path / "c2", other, seeds=[seed_dir]).seeded == 0
