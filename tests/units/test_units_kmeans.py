"""k-means: fitting, hashing, safetensors round trip, sklearn .bin, mismatch refusal, dedup."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from slamlm.units.extractor import UnitExtractor, dedup
from slamlm.units.kmeans import (
    KMeans,
    KMeansMismatchError,
    centroid_hash,
    fit_kmeans,
    load_kmeans,
    nearest,
    save_kmeans,
)


def blobs(n=6000, k=6, d=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(k, d, generator=g) * 6
    lab = torch.randint(k, (n,), generator=g)
    return centres[lab] + torch.randn(n, d, generator=g), centres, lab


def test_fit_recovers_clusters_and_is_seeded():
    x, centres, _ = blobs()
    km = fit_kmeans(x, k=6, seed=1, max_iter=40, init_size=2000)
    # every true centre has a fitted centroid close to it
    assert torch.cdist(centres, km.centroids).min(1).values.max() < 0.5
    again = fit_kmeans(x, k=6, seed=1, max_iter=40, init_size=2000)
    assert again.hash == km.hash and len(km.hash) == 16
    other = fit_kmeans(x, k=6, seed=2, max_iter=40, init_size=2000)
    assert other.hash != km.hash
    with pytest.raises(ValueError, match="at least k=6 frames"):
        fit_kmeans(x[:5], k=6)


def clustered(n, d, k, seed=0):
    """Gaussian blobs of unequal size and spread (as bench/kmeans_quality.py)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((k, d)) * 4.0
    lab = rng.choice(k, n, p=rng.dirichlet(np.full(k, 2.0)))
    scale = rng.uniform(0.5, 1.5, k)[lab, None]
    return (centres[lab] + rng.standard_normal((n, d)) * scale).astype(np.float32)


def test_inertia_matches_sklearn_kmeans_on_clustered_data():
    """Mean inertia over seeds <= 1.02x scikit-learn's KMeans (same seeds, same data)."""
    from sklearn.cluster import KMeans as SkKMeans
    from threadpoolctl import threadpool_limits

    from slamlm.units.lloyd import inertia

    x = clustered(6000, 16, 60, seed=5)
    xt = torch.from_numpy(x)
    ours, sk = [], []
    with threadpool_limits(1):
        for seed in range(4):
            ours.append(inertia(xt, fit_kmeans(xt, k=60, seed=seed).centroids))
            c = SkKMeans(n_clusters=60, n_init=1, random_state=seed).fit(x).cluster_centers_
            sk.append(inertia(xt, torch.as_tensor(c, dtype=torch.float32)))
    assert np.mean(ours) <= 1.02 * np.mean(sk), (ours, sk)
    # the old mini-batch + plain k-means++ fit ended 1.3-1.4x above on such data
    assert max(o / s for o, s in zip(ours, sk)) < 1.1


def test_greedy_kmeans_pp_spreads_and_lloyd_refills_empty_clusters():
    from slamlm.units.lloyd import kmeans_pp, lloyd, min_sqdist

    x, centres, _ = blobs(n=3000, k=8, d=4, seed=2)
    c = kmeans_pp(x, 8, torch.Generator().manual_seed(0))
    # seeding alone lands one centre in each blob (greedy trials avoid doubling up)
    assert len(set(torch.cdist(c, centres).argmin(1).tolist())) == 8
    # two centres far away from all data: they get no point and must be moved onto data
    bad = c.clone()
    bad[:2] = 1e4
    fixed, _ = lloyd(x, bad, max_iter=50)
    assert torch.cdist(fixed, x).min(1).values.max() < 10
    assert torch.bincount(min_sqdist(x, fixed)[1], minlength=8).min() > 0


def test_assign_equals_bruteforce_argmin():
    x = torch.randn(3000, 16)
    c = torch.randn(50, 16)
    ref = torch.cdist(x.double(), c.double()).argmin(1)
    assert torch.equal(nearest(x, c, chunk=700), ref)
    assert torch.equal(KMeans(c).assign(x), ref)


def test_safetensors_round_trip_keeps_metadata(tmp_path):
    km = KMeans(torch.randn(12, 80), encoder="mel", layer=0)
    path = save_kmeans(km, tmp_path / "km.safetensors")
    back = load_kmeans(path)
    assert torch.equal(back.centroids, km.centroids)
    assert (back.encoder, back.layer, back.k, back.dim, back.hash) == ("mel", 0, 12, 80, km.hash)
    assert back.hash == centroid_hash(km.centroids.numpy())


def test_tampered_kmeans_is_detected(tmp_path):
    from safetensors.torch import save_file

    km = KMeans(torch.randn(4, 8), encoder="mel")
    meta = km.metadata()
    save_file({"centroids": km.centroids + 1}, str(tmp_path / "bad.safetensors"), metadata=meta)
    with pytest.raises(ValueError, match="file altered or corrupt"):
        load_kmeans(tmp_path / "bad.safetensors")


def test_sklearn_joblib_bin_loads_and_assigns_like_sklearn(tmp_path):
    import joblib
    from sklearn.cluster import KMeans as SkKMeans

    x, _, _ = blobs(n=1500, k=5, d=80, seed=3)
    sk = SkKMeans(n_clusters=5, n_init=1, random_state=0).fit(x.numpy())
    joblib.dump(sk, tmp_path / "km500_mhubert.bin")
    km = load_kmeans(tmp_path / "km500_mhubert.bin")
    assert km.encoder is None and (km.k, km.dim) == (5, 80)
    probe = torch.randn(400, 80) * 6
    np.testing.assert_array_equal(km.assign(probe).numpy(), sk.predict(probe.numpy()))
    # usable with an encoder of the same dim (encoder unknown: only dim is checked)
    ex = UnitExtractor.load("mel", tmp_path / "km500_mhubert.bin")
    units = ex.encode([np.random.default_rng(0).standard_normal(16000).astype(np.float32)])[0]
    assert units.shape == (25,) and units.max() < 5


def test_not_a_kmeans_file_is_explained(tmp_path):
    (tmp_path / "x.bin").write_text("hello")
    with pytest.raises(ValueError, match="not a joblib/pickle k-means file"):
        load_kmeans(tmp_path / "x.bin")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_kmeans(tmp_path / "missing.safetensors")


def test_mismatched_kmeans_is_refused(tmp_path):
    hub = KMeans(torch.randn(7, 768), encoder="hubert:slprl/mhubert-base-25hz", layer=11)
    save_kmeans(hub, tmp_path / "hub.safetensors")
    with pytest.raises(KMeansMismatchError) as e:
        UnitExtractor.load("mel", tmp_path / "hub.safetensors")
    msg = str(e.value)
    assert "encoder hubert:slprl/mhubert-base-25hz layer 11 dim 768" in msg
    assert "this encoder is mel dim 80" in msg and "pass the k-means made for it" in msg
    # same dim, other encoder: still refused
    mel_like = KMeans(torch.randn(7, 80), encoder="mel:80x400x640:none")
    with pytest.raises(KMeansMismatchError, match="fit on encoder mel:80x400x640:none"):
        mel_like.check("mel", 80, 0)
    # HuBERT: other layer refused, same model name under another folder accepted
    with pytest.raises(KMeansMismatchError, match="layer 9"):
        hub.check("hubert:slprl/mhubert-base-25hz", 768, 9)
    hub.check("hubert:/models/mhubert-base-25hz", 768, 11)


def test_dedup_runs():
    u, d = dedup([3, 3, 3, 1, 1, 3, 4])
    assert u.tolist() == [3, 1, 3, 4] and d.tolist() == [3, 2, 1, 1]
    u, d = dedup(np.array([], dtype=np.int64))
    assert u.size == 0 and d.size == 0
    rng = np.random.default_rng(0)
    x = rng.integers(0, 3, 500)
    u, d = dedup(x)
    assert d.sum() == 500 and (u[1:] != u[:-1]).all()
    np.testing.assert_array_equal(np.repeat(u, d), x)
