"""The files of a checkpoint folder: names, JSON reading, weights in and out, hub ids.

The lowest layer of ``slamlm.model``: :mod:`checkpoint`, :mod:`slamkit` and :mod:`hf` all
build on it, and it imports none of them.

Example:
    >>> read_json.__name__, WEIGHTS, CONFIG
    ('read_json', 'model.safetensors', 'config.json')
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

WEIGHTS, CONFIG = "model.safetensors", "config.json"


class CheckpointError(ValueError):
    """A checkpoint folder is missing files or does not match its config."""


def read_json(path: Path, missing: str, error: type[Exception] = ValueError,
              missing_error: type[Exception] = FileNotFoundError) -> Any:
    """Parse JSON file ``path``; errors name it (``missing_error`` with ``missing`` if absent)."""
    if not path.is_file():
        raise missing_error(f"{path}: {missing}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as e:  # JSONDecodeError, UnicodeDecodeError, IsADirectory
        raise error(f"{path}: not valid JSON ({e})") from e


def looks_like_hub_id(source: str) -> bool:
    """``owner/name`` whose ``owner`` is not a local folder (``run/ckpt`` typos stay local)."""
    return (re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", source) is not None
            and not Path(source).parent.is_dir())


def resolve_checkpoint(source: str | Path) -> Path:
    """A local checkpoint folder: ``source`` itself, or a hub id's snapshot (downloaded).

    Example:
        >>> resolve_checkpoint("/tmp").is_dir()
        True
    """
    folder = Path(source)
    if folder.is_dir() or not looks_like_hub_id(str(source)):
        if not folder.is_dir():
            raise CheckpointError(f"{folder}: checkpoint folder does not exist")
        return folder
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(str(source), allow_patterns=["*.json", "*.safetensors",
                                                                   "*.md", "*.yaml"]))
    except Exception as e:  # offline, unknown repo, gated...
        raise CheckpointError(f"{source}: no such checkpoint folder, and as a hub id it could "
                              f"not be fetched ({type(e).__name__}: {e})") from e


def raw_config(folder: Path) -> dict[str, Any]:
    return read_json(folder / CONFIG, f"missing (is {folder} a SpeechLM checkpoint from `slam "
                     "init`, or a slamkit one?)", CheckpointError, CheckpointError)


def state_for_saving(model: nn.Module) -> dict[str, torch.Tensor]:
    """State dict without tied duplicates (safetensors refuses shared storage)."""
    state, seen = {}, {}
    for name, t in model.state_dict().items():
        key = (t.data_ptr(), t.shape, t.dtype)
        if t.data_ptr() and key in seen:
            continue
        seen[key] = name
        state[name] = t.detach().contiguous().cpu()
    return state


def load_state(model: nn.Module, state: dict[str, torch.Tensor], where: Path) -> None:
    """Assign weights (from a meta-device model) and re-tie; name missing/unexpected keys."""
    own = model.state_dict()
    tied = getattr(model, "tied_keys", lambda: set())()
    missing = sorted(set(own) - set(state) - tied)
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise CheckpointError(
            f"{where}: weights do not match config.json (missing: {missing[:5]}, "
            f"unexpected: {unexpected[:5]}); was config.json edited or copied from another run?"
        )
    for name, t in state.items():
        if own[name].shape != t.shape:
            raise CheckpointError(
                f"{where}: {name} has shape {tuple(t.shape)}, config.json implies "
                f"{tuple(own[name].shape)}"
            )
    model.load_state_dict(state, strict=False, assign=True)
    if hasattr(model, "tie_weights"):
        model.tie_weights()
