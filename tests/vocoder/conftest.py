"""A tiny real units folder for vocoder tests: 6 two-second cuts of a real recording, mel
units with a 16-means fitted on them (slam units extract)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_units(tmp_path_factory, peer_example_dir):
    from slamlm.audio import load_audio, save_audio
    from slamlm.units.runner import UnitsConfig, run_units

    root = tmp_path_factory.mktemp("vocunits")
    wav = load_audio(peer_example_dir / "audio1.flac")
    audio = root / "audio"
    audio.mkdir()
    for i in range(6):
        save_audio(audio / f"cut{i}.wav", wav[i * 32000: (i + 1) * 32000])
    run_units(UnitsConfig(input=str(audio), out=str(root / "units"), encoder="mel", k=16,
                          device="cpu", num_workers=0))
    return root / "units"
