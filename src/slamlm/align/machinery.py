"""Schedule, budget and step-checkpoint helpers for the DPO loop.

Minimal private versions, written because ``slamlm.train`` (which owns the pretraining
schedule/checkpoint machinery) had not landed when DPO was built; they follow the same
contracts (DESIGN.md): progress = max(step / max_steps, elapsed / budget), cosine after a
linear warm-up, atomic ``ckpt/step_XXXXXXXX/`` folders, ``--resume auto`` = newest complete.

Example:
    >>> parse_budget("30m"), parse_budget("1h30m"), parse_budget("90s"), parse_budget(None)
    (1800.0, 5400.0, 90.0, None)
    >>> round(lr_at(0.5, 1e-3, min_lr=0.0, warmup=0.0), 6)
    0.0005
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import torch

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_budget(text: str | float | None) -> float | None:
    """``"24h"``, ``"30m"``, ``"1h30m"``, ``"45s"`` or seconds -> seconds (None: no budget)."""
    if text is None or text == "":
        return None
    if isinstance(text, (int, float)):
        return float(text)
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([smhd])", text.strip().lower())
    if not parts or "".join(f"{a}{b}" for a, b in parts) != re.sub(r"\s+", "", text.lower()):
        raise ValueError(f"budget {text!r}: use e.g. 30m, 24h, 1h30m or 90s")
    return sum(float(a) * _UNITS[b] for a, b in parts)


def lr_at(progress: float, lr: float, min_lr: float = 0.0, warmup: float = 0.01) -> float:
    """Linear warm-up over the first ``warmup`` of progress, then cosine to ``min_lr``."""
    progress = min(max(progress, 0.0), 1.0)
    if warmup > 0 and progress < warmup:
        return lr * progress / warmup
    t = (progress - warmup) / max(1e-12, 1.0 - warmup)
    return min_lr + 0.5 * (lr - min_lr) * (1.0 + math.cos(math.pi * t))


def step_dir(ckpt_root: Path, step: int) -> Path:
    return ckpt_root / f"step_{step:08d}"


def latest_step(ckpt_root: Path) -> Path | None:
    """Newest complete ``step_XXXXXXXX`` folder (one with ``state.json``), or None."""
    if not ckpt_root.is_dir():
        return None
    done = [p for p in ckpt_root.glob("step_*") if p.is_dir() and (p / "state.json").is_file()
            and re.fullmatch(r"step_\d{8}", p.name)]
    return max(done, key=lambda p: int(p.name[5:])) if done else None


def save_step(folder: Path, model: torch.nn.Module, meta: dict[str, Any],
              optimizer: torch.optim.Optimizer, state: dict[str, Any], run_yaml: str) -> Path:
    """Atomically write model + optimizer + ``state.json`` + ``run.yaml`` into ``folder``."""
    from slamlm.io import atomic_dir
    from slamlm.model.checkpoint import write_checkpoint_files

    with atomic_dir(folder) as tmp:
        write_checkpoint_files(model, meta, tmp)
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
        (tmp / "run.yaml").write_text(run_yaml)
        (tmp / "state.json").write_text(json.dumps(state, indent=2) + "\n")
    return folder
