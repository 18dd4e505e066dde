"""k-means ``.bin`` files load through a restricted unpickler: real sklearn dumps load,
pickles that would run code are refused before they do (issue #16); loaders stay safe."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from slamlm.units.kmeans import load_kmeans
from slamlm.units.safe_pickle import UnsafePickleError, load_kmeans_centres

SRC = Path(__file__).resolve().parents[2] / "src" / "slamlm"


class WritesAFile:
    """Unpickling this calls exec(), which writes ``target``: what an attacker would ship."""

    def __init__(self, target: Path):
        self.target = str(target)

    def __reduce__(self):
        return (exec, (f"open({self.target!r}, 'w').write('pwned')",))


def fitted(kind: str = "KMeans"):
    import sklearn.cluster

    x = np.random.default_rng(0).standard_normal((400, 12)).astype(np.float32)
    cls = getattr(sklearn.cluster, kind)
    kw = {"random_state": np.random.RandomState(0)} if kind == "MiniBatchKMeans" else {}
    return cls(n_clusters=6, n_init=1, **kw).fit(x)


@pytest.mark.parametrize("kind", ["KMeans", "MiniBatchKMeans"])
@pytest.mark.parametrize("compress", [0, 3, ("gzip", 3), ("bz2", 3), ("xz", 3), ("lzma", 3)])
def test_real_joblib_dump_loads(tmp_path, kind, compress):
    import joblib

    est = fitted(kind)
    path = tmp_path / "km.bin"
    joblib.dump(est, path, compress=compress)
    np.testing.assert_array_equal(load_kmeans_centres(path), est.cluster_centers_)
    km = load_kmeans(path)
    probe = np.random.default_rng(1).standard_normal((300, 12)).astype(np.float32)
    np.testing.assert_array_equal(km.assign(torch.from_numpy(probe)).numpy(), est.predict(probe))


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_plain_pickle_of_kmeans_loads(tmp_path, protocol):
    est = fitted()
    path = tmp_path / "km.pkl"
    path.write_bytes(pickle.dumps(est, protocol=protocol))
    np.testing.assert_array_equal(load_kmeans_centres(path), est.cluster_centers_)


def test_old_module_names_of_textlesslib_era_files_load(tmp_path):
    """numpy 1.x (numpy.core) and scikit-learn < 0.22 (sklearn.cluster.k_means_) names."""
    est = fitted("MiniBatchKMeans")
    data = pickle.dumps(est, protocol=2)  # GLOBAL opcodes: "module\nname\n", no lengths
    for new, old in ((b"numpy._core.multiarray\n", b"numpy.core.multiarray\n"),
                     (b"sklearn.cluster._kmeans\n", b"sklearn.cluster.k_means_\n")):
        assert new in data
        data = data.replace(new, old)
    (tmp_path / "old.bin").write_bytes(data)
    np.testing.assert_array_equal(load_kmeans_centres(tmp_path / "old.bin"), est.cluster_centers_)


def test_object_arrays_inside_joblib_files_are_read_with_the_same_rules(tmp_path):
    import joblib

    est = fitted()
    est.feature_names_in_ = np.array([f"f{i}" for i in range(12)], dtype=object)
    joblib.dump(est, tmp_path / "names.bin")
    np.testing.assert_array_equal(load_kmeans_centres(tmp_path / "names.bin"), est.cluster_centers_)
    target = tmp_path / "pwned.txt"
    est.feature_names_in_ = np.array([WritesAFile(target)], dtype=object)
    joblib.dump(est, tmp_path / "evil_names.bin")
    with pytest.raises(UnsafePickleError, match="refused global builtins.exec"):
        load_kmeans(tmp_path / "evil_names.bin")
    assert not target.exists()


def test_the_payload_really_writes_a_file_under_plain_pickle(tmp_path):
    """Guard for the tests below: the payload does what it says when unpickled unsafely."""
    target = tmp_path / "proof.txt"
    pickle.loads(pickle.dumps(WritesAFile(target)))
    assert target.read_text() == "pwned"


@pytest.mark.parametrize("how", ["pickle", "joblib", "joblib-compressed", "inside-kmeans"])
def test_code_running_pickle_is_refused_and_runs_nothing(tmp_path, how):
    import joblib

    target = tmp_path / "pwned.txt"
    path = tmp_path / "km500.bin"
    if how == "pickle":
        path.write_bytes(pickle.dumps(WritesAFile(target), protocol=2))
    elif how == "inside-kmeans":  # an otherwise valid k-means carrying the payload
        est = fitted()
        est.extra = WritesAFile(target)
        joblib.dump(est, path, compress=3)
    else:
        joblib.dump(WritesAFile(target), path, compress=3 if how.endswith("compressed") else 0)
    with pytest.raises(UnsafePickleError) as e:
        load_kmeans(path)
    msg = str(e.value)
    assert str(path) in msg and "refused global builtins.exec" in msg
    assert "do not open it" in msg
    assert not target.exists()


def test_other_refusals_name_the_global(tmp_path):
    for module, name in (("os", "system"), ("sklearn.pipeline", "Pipeline"),
                         ("numpy", "load"), ("builtins", "getattr")):
        path = tmp_path / f"{module}.{name}.bin"
        path.write_bytes(b"\x80\x02c" + f"{module}\n{name}\n".encode() + b")R.")
        with pytest.raises(UnsafePickleError, match=re.escape(f"refused global {module}.{name}")):
            load_kmeans_centres(path)


def test_not_a_kmeans_is_explained(tmp_path):
    import joblib

    joblib.dump({"centres": [1, 2]}, tmp_path / "dict.bin")
    with pytest.raises(ValueError, match="dict has no 2-D cluster_centers_"):
        load_kmeans(tmp_path / "dict.bin")
    (tmp_path / "lz4.bin").write_bytes(b"\x04\x22\x4d\x18rest")
    with pytest.raises(ValueError, match="lz4-compressed"):
        load_kmeans(tmp_path / "lz4.bin")
    joblib.dump(np.arange(6, dtype=">f8").reshape(2, 3), tmp_path / "bare.bin")
    assert load_kmeans(tmp_path / "bare.bin").centroids.tolist() == [[0, 1, 2], [3, 4, 5]]


def _calls(pattern: str) -> list[str]:
    hits = []
    for folder in ("units", "eval"):
        for p in sorted((SRC / folder).glob("*.py")):
            for n, line in enumerate(p.read_text().splitlines(), 1):
                if re.search(pattern, line) and not line.lstrip().startswith(("#", '"', "'")):
                    hits.append(f"{p.name}:{n}: {line.strip()}")
    return hits


def test_units_and_eval_loaders_run_no_file_code():
    """Audit: no joblib/pickle loads, torch.load only with weights_only=True, no remote code."""
    assert not _calls(r"\b(joblib\.load|pickle\.loads?|cPickle\.loads?|dill\.loads?|shelve\.open)\(")
    assert not _calls(r"trust_remote_code\s*=\s*True")
    assert not _calls(r"allow_pickle\s*=\s*True")
    assert all("weights_only=True" in c for c in _calls(r"torch\.load\("))
