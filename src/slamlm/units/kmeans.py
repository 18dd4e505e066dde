"""k-means quantisers: fit (greedy k-means++ + Lloyd, seeded), save/load, assign.

A k-means is identified by the hash of its centroids (``sha256`` of the float32 bytes, first
16 hex digits), never by a file name. Saved as safetensors with metadata (``encoder``,
``layer``, ``dim``, ``k``, ``hash``); textlesslib/TWIST ``.bin`` files (a scikit-learn
``KMeans`` pickled with joblib) load too, through a restricted unpickler that runs no code from
the file (:mod:`slamlm.units.safe_pickle`; neither joblib nor scikit-learn is needed). Their
encoder is unknown, so only the dimension is checked: pass the k-means made for your encoder.

Example:
    >>> import torch
    >>> km = fit_kmeans(torch.randn(2000, 8), k=4, seed=0)
    >>> km.k, km.dim, len(km.hash)
    (4, 8, 16)
    >>> km.assign(km.centroids).tolist()
    [0, 1, 2, 3]
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from slamlm.units.lloyd import CHUNK, min_sqdist

log = logging.getLogger(__name__)


class KMeansMismatchError(ValueError):
    """A k-means used with an encoder it was not fit on."""


def centroid_hash(centroids: torch.Tensor | np.ndarray) -> str:
    """Short content hash of the centroids (float32, C order)."""
    arr = np.ascontiguousarray(np.asarray(centroids, dtype=np.float32))
    return hashlib.sha256(arr.tobytes()).hexdigest()[:16]


@dataclass
class KMeans:
    """Centroids (k, dim) float32 plus where they came from."""

    centroids: torch.Tensor
    encoder: str | None = None
    layer: int | None = None
    path: str | None = None
    hash: str = field(default="")

    def __post_init__(self) -> None:
        self.centroids = self.centroids.detach().float().contiguous()
        self.hash = centroid_hash(self.centroids.cpu().numpy())
        self._c2 = (self.centroids ** 2).sum(1)

    @property
    def k(self) -> int:
        return int(self.centroids.shape[0])

    @property
    def dim(self) -> int:
        return int(self.centroids.shape[1])

    def to(self, device: str | torch.device) -> KMeans:
        self.centroids = self.centroids.to(device)
        self._c2 = self._c2.to(device)
        return self

    def assign(self, x: torch.Tensor, chunk: int = CHUNK) -> torch.Tensor:
        """Nearest centroid per row of ``x`` (N, dim) -> (N,) long on the centroids' device."""
        return nearest(x, self.centroids, self._c2, chunk)

    def check(self, encoder: str, dim: int, layer: int | None) -> None:
        """Refuse a k-means fit on another encoder, layer or feature size."""
        where = self.path or f"k-means {self.hash}"
        fit_on = f"encoder {self.encoder or 'unknown'}" + (
            f" layer {self.layer}" if self.layer is not None and self.encoder else "")
        this = f"{encoder} dim {dim}" + (f" layer {layer}" if encoder.startswith("hubert") else "")
        bad = dim != self.dim or (self.encoder is not None and not same_encoder(self.encoder, encoder))
        bad = bad or (self.encoder is not None and encoder.startswith("hubert")
                      and self.layer is not None and layer is not None and self.layer != layer)
        if bad:
            raise KMeansMismatchError(
                f"k-means {where} was fit on {fit_on} dim {self.dim}; this encoder is {this} "
                f"- pass the k-means made for it (or fit one: slam units fit-kmeans)")

    def metadata(self) -> dict[str, str]:
        return {"encoder": self.encoder or "", "layer": str(self.layer if self.layer is not None else ""),
                "dim": str(self.dim), "k": str(self.k), "hash": self.hash, "format": "slamlm-kmeans-1"}


def nearest(x: torch.Tensor, c: torch.Tensor, c2: torch.Tensor | None = None,
            chunk: int = CHUNK) -> torch.Tensor:
    """argmin_j ||x_i - c_j||^2 per row of ``x`` (float32, in chunks of rows), on ``c``'s device."""
    return min_sqdist(x.to(c.device, torch.float32), c, c2, chunk)[1]


def same_encoder(a: str, b: str) -> bool:
    """Equal ids, or HuBERTs (phone encoders) with the same final path part (``/models/x`` ==
    ``org/x``); a moved phone encoder is checked by its weights' hash in unit identities."""
    if a == b:
        return True
    for kind in ("hubert:", "phones:"):
        if a.startswith(kind) and b.startswith(kind):
            n = len(kind)
            return Path(a[n:].rstrip("/")).name == Path(b[n:].rstrip("/")).name
    return False


def save_kmeans(km: KMeans, path: str | Path) -> Path:
    """Write centroids + metadata as safetensors, atomically."""
    from safetensors.torch import save

    from slamlm.io import atomic_write_bytes

    data = save({"centroids": km.centroids.detach().cpu().contiguous()}, metadata=km.metadata())
    km.path = str(path)
    return atomic_write_bytes(path, data)


def load_kmeans(path: str | Path, device: str | torch.device = "cpu") -> KMeans:
    """Load our ``.safetensors`` or a textlesslib/TWIST joblib ``.bin`` (sklearn KMeans)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"k-means {path} does not exist (fit one: slam units fit-kmeans)")
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        from slamlm.io import reading

        fix = "not a slamlm k-means file, or a damaged one: fit it again (slam units fit-kmeans)"
        with reading(path, fix, ValueError):
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
                if "centroids" not in f.keys():
                    raise ValueError(f"{path}: no 'centroids' tensor (not a slamlm k-means file)")
                c = f.get_tensor("centroids")
            layer = meta.get("layer") or None
            if c.ndim != 2 or 0 in c.shape or not c.is_floating_point():
                raise ValueError(f"{path}: centroids of shape {tuple(c.shape)} and dtype {c.dtype}; "
                                 f"expected a non-empty 2-D float (k, dim) tensor: {fix}")
            if not torch.isfinite(c).all():
                raise ValueError(f"{path}: centroids hold NaN or infinite values: {fix}")
            km = KMeans(c, encoder=meta.get("encoder") or None,
                        layer=int(layer) if layer else None, path=str(path))
        if meta.get("hash") and meta["hash"] != km.hash:
            raise ValueError(f"{path}: centroids hash {km.hash} != recorded {meta['hash']} "
                             f"(file altered or corrupt)")
        return km.to(device)
    return _load_sklearn(path).to(device)


def _load_sklearn(path: Path) -> KMeans:
    """Centroids of a joblib/pickle ``.bin`` via the restricted unpickler (runs no file code)."""
    from slamlm.units.safe_pickle import load_kmeans_centres

    centers = load_kmeans_centres(path)
    log.info("%s: scikit-learn k-means, %d x %d; its encoder is not recorded", path, *centers.shape)
    return KMeans(torch.from_numpy(centers), path=str(path))


@torch.no_grad()
def fit_kmeans(x: torch.Tensor, k: int = 500, seed: int = 0, max_iter: int = 300,
               tol: float = 1e-4, init_size: int = 50_000, n_init: int = 3,
               encoder: str | None = None, layer: int | None = None,
               device: str | torch.device | None = None) -> KMeans:
    """k-means as scikit-learn's ``KMeans`` (greedy k-means++, Lloyd); seeded, deterministic.

    ``n_init`` greedy k-means++ seedings on ``init_size`` random rows, each refined there; the
    best goes on to full-batch Lloyd iterations (at most ``max_iter``) until the centres move
    less than ``tol`` (relative to the data's variance); see :mod:`slamlm.units.lloyd`. Runs
    on ``device`` (default: ``x``'s).
    """
    from slamlm.units.lloyd import fit_centroids, inertia

    device = torch.device(device or x.device)
    x = x.to(device, torch.float32)
    c, n_iter = fit_centroids(x, k, seed=seed, max_iter=max_iter, tol=tol, init_size=init_size,
                              n_init=n_init)
    if log.isEnabledFor(logging.INFO):
        log.info("k-means k=%d on %d x %d: %d full-batch Lloyd iterations, inertia per frame %.4g",
                 k, x.shape[0], x.shape[1], n_iter, inertia(x, c) / x.shape[0])
    return KMeans(c.cpu(), encoder=encoder, layer=layer)
