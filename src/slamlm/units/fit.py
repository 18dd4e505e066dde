"""``slam units fit-kmeans``: sample encoder frames from audio and fit a k-means.

The k-means file is named by its content hash (``kmeans-<hash>.safetensors``) unless an
explicit ``--out`` file name is given; ``extract`` without ``--kmeans`` fits one on its own
input first and keeps it in the output folder (reused by a re-run with the same encoder).

Example:
    >>> # run_fit_kmeans(build_config(FitConfig, base={"input": "data", "out": "km.safetensors",
    >>> #                                              "k": 500}))
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from slamlm.corpora import AudioItem
from slamlm.units.inputs import input_options, list_inputs

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FitConfig:
    """Settings of ``slam units fit-kmeans``."""

    input: str = ""              # folder, glob, manifest or container (as for extract)
    out: str = ""                # a .safetensors file, or a folder (file named by hash)
    input_format: str = "auto"   # auto | files | manifest | list | hf | parquet | webdataset | lhotse
    split: str | None = None     # split of a saved HF DatasetDict
    audio_column: str | None = None  # HF/parquet audio column; none: the one Audio-typed column
    encoder: str = "mel"
    layer: int = 11
    k: int = 500
    max_frames: int = 200_000    # frames sampled (uniformly over files) for fitting
    max_iter: int = 300          # Lloyd iterations at most (full batch, as scikit-learn)
    tol: float = 1e-4            # stop when centres move < tol x the data's mean variance
    init_size: int = 50_000      # frames the greedy k-means++ seeding looks at
    n_init: int = 3              # seedings tried on those frames; the best is kept
    seed: int = 0
    device: str = "auto"
    dtype: str | None = None


KEEP_BYTES = 1 << 30  # features of sampled files kept for the extraction after the fit


def sample_frames(ex: Any, items: list[AudioItem], max_frames: int, seed: int,
                  keep: dict[str, tuple[torch.Tensor, float]] | None = None,
                  keep_bytes: int = KEEP_BYTES) -> torch.Tensor:
    """Encoder frames from files in a seeded random order, at most ``max_frames`` in all.

    Each file gives at most ``2 * max_frames / n_files`` (>= 50) random frames so the sample
    spreads over files; unreadable files are skipped with a warning. ``keep``: filled with
    id -> (all frames of the file, seconds) while under ``keep_bytes`` in all, so that an
    extraction after the fit need not encode those files again.
    """
    from slamlm.audio import AudioError
    from slamlm.corpora import load_item

    rng = np.random.default_rng(seed)
    order = rng.permutation(len(items))
    per_file = max(50, 2 * max_frames // max(len(items), 1))
    chunks, total = [], 0
    from tqdm.auto import tqdm

    for i in tqdm(order, desc="k-means sample", unit="file", disable=len(order) < 20):
        try:
            wav = load_item(items[i], min_seconds=ex.min_seconds)
        except AudioError as e:
            log.warning("k-means fit: skipping %s", e)
            continue
        f = ex.features([wav])[0].cpu()
        if keep is not None and keep_bytes >= f.numel() * f.element_size():
            keep[items[i].id] = (f, len(wav) / 16000)
            keep_bytes -= f.numel() * f.element_size()
        if len(f) > per_file:
            f = f[torch.from_numpy(np.sort(rng.choice(len(f), per_file, replace=False)))]
        chunks.append(f)
        total += len(f)
        if total >= max_frames:
            break
    if not chunks:
        raise ValueError("k-means fit: no readable audio among the inputs")
    x = torch.cat(chunks)
    if len(x) > max_frames:
        x = x[torch.from_numpy(np.sort(rng.choice(len(x), max_frames, replace=False)))]
    return x


def fit_from_items(cfg: FitConfig, items: list[AudioItem],
                   keep: dict[str, tuple[torch.Tensor, float]] | None = None):
    """Encode a sample of the inputs and fit; returns the :class:`KMeans` (not saved).
    ``keep``: see :func:`sample_frames`."""
    from slamlm.units.extractor import UnitExtractor
    from slamlm.units.kmeans import fit_kmeans

    ex = UnitExtractor.load(cfg.encoder, None, layer=cfg.layer, device=cfg.device, dtype=cfg.dtype)
    x = sample_frames(ex, items, cfg.max_frames, cfg.seed, keep=keep)
    log.info("fitting k-means k=%d on %d frames of %s (dim %d)", cfg.k, len(x), ex.encoder.id,
             ex.encoder.dim)
    return fit_kmeans(x, k=cfg.k, seed=cfg.seed, max_iter=cfg.max_iter, tol=cfg.tol,
                      init_size=cfg.init_size, n_init=cfg.n_init, encoder=ex.encoder.id,
                      layer=ex.encoder.layer, device=ex.encoder.device)


def run_fit_kmeans(cfg: FitConfig) -> Path:
    """Fit and save; ``out`` a folder -> ``<out>/kmeans-<hash>.safetensors``."""
    from slamlm.units.kmeans import save_kmeans

    if not cfg.input or not cfg.out:
        raise ValueError("slam units fit-kmeans needs an input and --out")
    km = fit_from_items(cfg, list_inputs(cfg.input, **input_options(cfg)))
    out = Path(cfg.out)
    path = out if out.suffix == ".safetensors" else out / f"kmeans-{km.hash}.safetensors"
    save_kmeans(km, path)
    log.info("k-means %s (k=%d, dim %d, %s) -> %s", km.hash, km.k, km.dim, km.encoder, path)
    return path


def ensure_kmeans(cfg: Any, items: list[AudioItem], out: Path,
                  keep: dict[str, tuple[torch.Tensor, float]] | None = None) -> Path:
    """The k-means for an extract run: ``cfg.kmeans``, one fit earlier in ``out``, or a new fit
    (``keep``: filled with the features of the files it encoded, see :func:`sample_frames`)."""
    from slamlm.units.kmeans import load_kmeans, same_encoder, save_kmeans

    if cfg.kmeans:
        return Path(cfg.kmeans)
    from slamlm.units.encoders import encoder_id

    want = encoder_id(cfg.encoder)
    for p in sorted(out.glob("kmeans-*.safetensors")):
        km = load_kmeans(p)
        if (km.encoder and same_encoder(km.encoder, want) and km.k == cfg.k
                and (km.layer == cfg.layer or not cfg.encoder.startswith("hubert"))):
            log.info("no --kmeans given: reusing %s fit earlier on this input", p)
            return p
    log.info("no --kmeans given: fitting one (k=%d) on the input first; it is saved in %s "
             "(pass it as --kmeans to other runs)", cfg.k, out)
    fcfg = FitConfig(input=cfg.input, out=str(out), input_format=cfg.input_format,
                     split=cfg.split, audio_column=cfg.audio_column, encoder=cfg.encoder, layer=cfg.layer, k=cfg.k,
                     max_frames=cfg.max_fit_frames, seed=cfg.seed, device=cfg.device,
                     dtype=cfg.dtype)
    km = fit_from_items(fcfg, items, keep=keep)
    path = out / f"kmeans-{km.hash}.safetensors"
    save_kmeans(km, path)
    log.info("k-means %s saved to %s", km.hash, path)
    return path

