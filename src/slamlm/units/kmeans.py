"""k-means quantisers: fit (mini-batch, k-means++ init, seeded), save/load, assign.

A k-means is identified by the hash of its centroids (``sha256`` of the float32 bytes, first
16 hex digits), never by a file name. Saved as safetensors with metadata (``encoder``,
``layer``, ``dim``, ``k``, ``hash``); textlesslib/TWIST ``.bin`` files (a scikit-learn
``KMeans`` pickled with joblib) load too (their encoder is unknown, so only the dimension is
checked: pass the k-means made for your encoder).

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

    def assign(self, x: torch.Tensor, chunk: int = 65536) -> torch.Tensor:
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


@torch.no_grad()
def nearest(x: torch.Tensor, c: torch.Tensor, c2: torch.Tensor | None = None,
            chunk: int = 65536) -> torch.Tensor:
    """argmin_j ||x_i||^2 - 2 x_i.c_j + ||c_j||^2, in chunks of rows (float32)."""
    x = x.to(c.device, torch.float32)
    c2 = (c ** 2).sum(1) if c2 is None else c2
    out = torch.empty(x.shape[0], dtype=torch.long, device=x.device)
    for s in range(0, x.shape[0], chunk):
        xs = x[s:s + chunk]
        d = (xs ** 2).sum(1, keepdim=True) - 2 * xs @ c.T + c2  # (n, k)
        out[s:s + chunk] = d.argmin(1)
    return out


def same_encoder(a: str, b: str) -> bool:
    """Equal ids, or HuBERTs with the same final path part (``/models/x`` == ``org/x``)."""
    if a == b:
        return True
    if a.startswith("hubert:") and b.startswith("hubert:"):
        return Path(a[7:].rstrip("/")).name == Path(b[7:].rstrip("/")).name
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

        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            if "centroids" not in f.keys():
                raise ValueError(f"{path}: no 'centroids' tensor (not a slamlm k-means file)")
            c = f.get_tensor("centroids")
        layer = meta.get("layer") or None
        km = KMeans(c, encoder=meta.get("encoder") or None,
                    layer=int(layer) if layer else None, path=str(path))
        if meta.get("hash") and meta["hash"] != km.hash:
            raise ValueError(f"{path}: centroids hash {km.hash} != recorded {meta['hash']} "
                             f"(file altered or corrupt)")
        return km.to(device)
    return _load_sklearn(path).to(device)


def _load_sklearn(path: Path) -> KMeans:
    try:
        import joblib
    except ImportError as e:
        raise ImportError("loading a joblib k-means needs joblib + scikit-learn: "
                          "pip install 'slamlm[kmeans]'") from e
    try:
        obj = joblib.load(path)
    except Exception as e:
        raise ValueError(f"{path}: not a joblib-pickled k-means ({type(e).__name__}: {e}); "
                         f"expected .safetensors (slamlm) or a textlesslib/TWIST .bin") from e
    centers = getattr(obj, "cluster_centers_", None)
    if centers is None:
        raise ValueError(f"{path}: {type(obj).__name__} has no cluster_centers_ "
                         f"(not a fitted scikit-learn KMeans)")
    log.info("%s: scikit-learn k-means, %d x %d; its encoder is not recorded",
             path, *np.shape(centers))
    return KMeans(torch.from_numpy(np.asarray(centers, dtype=np.float32)), path=str(path))


def _kmeans_pp(x: torch.Tensor, k: int, gen: torch.Generator) -> torch.Tensor:
    """k-means++ seeding on rows of ``x`` (N, d)."""
    n = x.shape[0]
    first = torch.randint(n, (1,), generator=gen, device="cpu").item()
    centers = [x[first]]
    d2 = ((x - x[first]) ** 2).sum(1)
    for _ in range(1, k):
        probs = d2.clamp_min(0).cpu().double()
        idx = (torch.multinomial(probs / probs.sum(), 1, generator=gen).item()
               if probs.sum() > 0 else torch.randint(n, (1,), generator=gen).item())
        centers.append(x[idx])
        d2 = torch.minimum(d2, ((x - x[idx]) ** 2).sum(1))
    return torch.stack(centers)


def _lloyd(x: torch.Tensor, c: torch.Tensor, max_iter: int) -> torch.Tensor:
    """Full-batch k-means iterations; stops when no label changes."""
    prev = None
    for _ in range(max_iter):
        lab = nearest(x, c)
        if prev is not None and torch.equal(lab, prev):
            break
        prev = lab
        nb = torch.bincount(lab, minlength=c.shape[0]).float()
        sums = torch.zeros_like(c).index_add_(0, lab, x)
        hit = nb > 0
        c[hit] = sums[hit] / nb[hit].unsqueeze(1)
    return c


@torch.no_grad()
def fit_kmeans(x: torch.Tensor, k: int = 500, seed: int = 0, batch_size: int = 10_000,
               max_iter: int = 100, init_size: int = 20_000, encoder: str | None = None,
               layer: int | None = None, device: str | torch.device | None = None) -> KMeans:
    """Mini-batch k-means (Sculley 2010) with k-means++ init; deterministic for a ``seed``.

    When all ``x`` fits in one mini-batch, plain Lloyd iterations run to convergence instead.
    """
    device = torch.device(device or x.device)
    x = x.to(device, torch.float32)
    n = x.shape[0]
    if n < k:
        raise ValueError(f"k-means needs at least k={k} frames, got {n} (use more audio or a smaller --k)")
    gen = torch.Generator().manual_seed(seed)
    init_idx = torch.randperm(n, generator=gen)[: max(init_size, k)].to(device)
    c = _kmeans_pp(x[init_idx], k, gen)
    if n <= batch_size:  # the whole sample fits one batch: exact Lloyd until labels settle
        c = _lloyd(x, c, max_iter)
        return KMeans(c.cpu(), encoder=encoder, layer=layer)
    counts = torch.zeros(k, device=device)
    for _ in range(max_iter):
        b = x[torch.randint(n, (min(batch_size, n),), generator=gen).to(device)]
        lab = nearest(b, c)
        counts += torch.bincount(lab, minlength=k).float()
        sums = torch.zeros_like(c).index_add_(0, lab, b)
        nb = torch.bincount(lab, minlength=k).float()
        hit = nb > 0
        eta = (nb[hit] / counts[hit]).unsqueeze(1)  # per-centre learning rate
        c[hit] = (1 - eta) * c[hit] + eta * (sums[hit] / nb[hit].unsqueeze(1))
    dead = counts == 0
    if dead.any():  # never-hit centres: move to random frames so every unit is usable
        c[dead] = x[torch.randint(n, (int(dead.sum()),), generator=gen).to(device)]
    return KMeans(c.cpu(), encoder=encoder, layer=layer)
