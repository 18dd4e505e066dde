"""Fixtures of the container tests: one small k-means and the plain-file units to match."""

from __future__ import annotations

from pathlib import Path

import pytest
import soundfile as sf
from corpora_helpers import CLIPS, extract


@pytest.fixture(scope="session")
def kmeans8(tmp_path_factory) -> Path:
    """A k=8 mel k-means fit on the clips (shared by every container test)."""
    from slamlm.units.fit import FitConfig, run_fit_kmeans

    d = tmp_path_factory.mktemp("fit")
    for k, x in CLIPS.items():
        sf.write(d / f"{k}.flac", x, 16000, subtype="PCM_16")
    return run_fit_kmeans(FitConfig(input=str(d), out=str(d / "km.safetensors"), k=8,
                                    device="cpu", n_init=1))


@pytest.fixture(scope="session")
def plain_units(tmp_path_factory, kmeans8) -> dict[str, dict]:
    """Units of the clips extracted from plain FLAC files: what every container must match."""
    d = tmp_path_factory.mktemp("plain")
    for k, x in CLIPS.items():
        sf.write(d / f"{k}.flac", x, 16000, subtype="PCM_16")
    return extract(d, tmp_path_factory.mktemp("plain_out"), kmeans8)


