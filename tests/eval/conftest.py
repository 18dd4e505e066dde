"""Fixtures for eval tests: a tiny ZeroSpeech 2021 folder of real WAV files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from eval_helpers import LEX_HEADER, SYN_HEADER, write_gold, write_wav

# the CPU is shared: one thread avoids OpenMP contention (several times faster here)
torch.set_num_threads(1)


@pytest.fixture
def zr_root(tmp_path) -> Path:
    """zr/{lexical,syntactic}/dev: 3 ids x 2 voices, word vs non-word / good vs bad sentence."""
    root = tmp_path / "zr"
    seed = 0
    lex, syn = [], []
    for i, freq in enumerate([0, 7, 300]):
        for voice in ("Alex", "Bruce"):
            for correct in (1, 0):
                seed += 1
                name = f"lex{i}{voice}{correct}"
                write_wav(root / "lexical/dev" / f"{name}.wav", seed, 0.3 + 0.05 * (seed % 5))
                lex.append({"id": f"w{i}", "filename": name, "voice": voice, "frequency": freq,
                            "word": f"word{i}", "correct": correct})
                name = f"syn{i}{voice}{correct}"
                write_wav(root / "syntactic/dev" / f"{name}.wav", seed + 50, 0.5)
                syn.append({"filename": name, "type": ["agreement", "island"][i % 2],
                            "subtype": "s", "id": f"s{i}", "voice": voice, "correct": correct})
    write_gold(root / "lexical/dev/gold.csv", LEX_HEADER, lex)
    write_gold(root / "syntactic/dev/gold.csv", SYN_HEADER, syn)
    return root
