"""Shared fixtures. Tests never reach a model hub."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# fixed CPU threads: the stages' auto thread probe would make bitwise-resume tests depend on
# the machine's load (tests of the probe clear it with monkeypatch)
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def pytest_collection_modifyitems(config, items):
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """The CPU is shared (2 cores in CI): tiny tensors run faster on one intra-op thread."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def peer_example_dir() -> Path:
    """The two real recordings + peer-toolkit units (tests/fixtures/peer_example)."""
    return FIXTURES / "peer_example"


@pytest.fixture
def sine_wav(tmp_path):
    """Write a mono sine WAV and return its path: sine_wav(seconds=1.0, sr=16000, name=...)."""
    import soundfile as sf

    def make(seconds: float = 1.0, sr: int = 16_000, name: str = "sine.wav", channels: int = 1,
             freq: float = 220.0) -> Path:
        t = np.arange(int(seconds * sr)) / sr
        x = (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
        if channels > 1:
            x = np.stack([x] * channels, axis=1)
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        sf.write(p, x, sr)
        return p

    return make
