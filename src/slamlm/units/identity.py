"""What names a unit extractor across runs: a stable hash of its identity (the dict
:meth:`slamlm.units.extractor.UnitExtractor.identity` gives) and the unit-cache file named by it.

Kept apart from the extractor (no torch import), so the benchmark synthesis (``synth``) and
the eval's unit cache (``eval.unitcache``) name the same file for the same units.

Example:
    >>> ident = {"encoder": "mel", "layer": 0, "dim": 80, "k": 500, "kmeans_hash": "ab",
    ...          "kmeans_path": "/tmp/km.safetensors"}
    >>> unit_cache_name(ident) == unit_cache_name(dict(ident, kmeans_path="/elsewhere"))
    True
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def extractor_hash(identity: dict[str, Any]) -> str:
    """Stable short hash of an extractor identity (the local ``kmeans_path`` is left out)."""
    d = {k: v for k, v in identity.items() if k != "kmeans_path"}
    return hashlib.sha1(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]


def unit_cache_name(identity: dict[str, Any]) -> str:
    """``units-<extractor hash>.jsonl``: the file of one extractor's cached units (records
    ``{"sha1": <file content sha1>, "units": [...]}``, see :mod:`slamlm.eval.unitcache`)."""
    return f"units-{extractor_hash(identity)}.jsonl"
