"""Audio -> discrete units: encoders (mel, HuBERT), k-means, dedup, the batch runner.

Imports are lazy so ``slam --help`` stays instant.

Example:
    >>> from slamlm.units import dedup
    >>> [a.tolist() for a in dedup([1, 1, 2])]
    [[1, 2], [2, 1]]
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "UnitExtractor": "slamlm.units.extractor",
    "dedup": "slamlm.units.extractor",
    "KMeans": "slamlm.units.kmeans",
    "KMeansMismatchError": "slamlm.units.kmeans",
    "load_kmeans": "slamlm.units.kmeans",
    "save_kmeans": "slamlm.units.kmeans",
    "fit_kmeans": "slamlm.units.kmeans",
    "UnitsConfig": "slamlm.units.runner",
    "run_units": "slamlm.units.runner",
    "read_units": "slamlm.units.runner",
    "MergeConfig": "slamlm.units.merge",
    "run_units_merge": "slamlm.units.merge",
    "FitConfig": "slamlm.units.fit",
    "run_fit_kmeans": "slamlm.units.fit",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'slamlm.units' has no attribute {name!r}")
