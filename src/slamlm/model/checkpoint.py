"""Self-describing SpeechLM checkpoint folders: ``model.safetensors`` + ``config.json``.

``config.json`` holds ``model`` (SpeechLMConfig), ``vocab`` (UnitVocab), ``units`` (unit
extractor identity) and ``init`` (how the weights were initialised); training adds more
files beside them. Folders are written atomically (a temp folder renamed at the end).

``read_meta`` / ``load_checkpoint`` also read slamkit checkpoint folders (the released
``slprl/slam`` models; see :mod:`slamlm.model.slamkit`), and a hub id that is not a local
folder is fetched with ``huggingface_hub.snapshot_download``.

Example:
    >>> import tempfile, pathlib
    >>> from slamlm.model import SpeechLM, named_shape
    >>> d = pathlib.Path(tempfile.mkdtemp()) / "ckpt"
    >>> _ = save_checkpoint(SpeechLM(named_shape("tiny")), {"vocab": {"n_units": 500}}, d)
    >>> load_checkpoint(d)[0].config.n_layers
    2
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from slamlm.io import atomic_dir, atomic_write_json, reading
from slamlm.model import slamkit
from slamlm.model.build import build_model
from slamlm.model.config import SpeechLMConfig
from slamlm.model.files import (  # noqa: F401  (CheckpointError, read_json: re-exported)
    CONFIG,
    WEIGHTS,
    CheckpointError,
    load_state,
    raw_config,
    read_json,
    resolve_checkpoint,
    state_for_saving,
)
from slamlm.vocab import UnitVocab

log = logging.getLogger(__name__)

def write_checkpoint_files(model: nn.Module, meta: dict[str, Any], folder: Path) -> None:
    """Write weights + config.json into an existing folder (non-atomic; see save_checkpoint)."""
    from safetensors.torch import save_file

    extra = getattr(model, "checkpoint_extra", None)
    config = {"model": model.config.to_dict(), "vocab": {}, "units": {}, "init": {}}
    config.update({k: v for k, v in meta.items() if k != "model"})
    if extra is not None:
        config.update(extra())
    save_file(state_for_saving(model), str(folder / WEIGHTS), metadata={"format": "pt"})
    atomic_write_json(folder / CONFIG, config)


def save_checkpoint(model: nn.Module, meta: dict[str, Any], folder: str | Path) -> Path:
    """Atomically write ``folder`` with ``model.safetensors`` and ``config.json``.

    ``meta`` may hold ``vocab`` (a UnitVocab or its dict), ``units``, ``init`` and any other
    JSON-able keys; ``model`` is always taken from ``model.config``.
    """
    folder = Path(folder)
    meta = dict(meta)
    if isinstance(meta.get("vocab"), UnitVocab):
        meta["vocab"] = meta["vocab"].to_dict()
    with atomic_dir(folder) as tmp:
        write_checkpoint_files(model, meta, tmp)
    log.info("saved checkpoint %s", folder)
    return folder


def read_meta(folder: str | Path) -> dict[str, Any]:
    """Parse ``config.json`` of a checkpoint folder (or hub id), with errors naming the file.

    A slamkit folder gives the same sections, derived from its own files.
    """
    folder = resolve_checkpoint(folder)
    path = folder / CONFIG
    meta = raw_config(folder)
    if slamkit.is_slamkit(meta):
        return slamkit.slamkit_meta(folder, meta)
    if not isinstance(meta, dict) or "model" not in meta:
        raise CheckpointError(
            f"{path}: no 'model' section: neither a SpeechLM checkpoint (slam init / pretrain) "
            f"nor a slamkit one (model_type {slamkit.MODEL_TYPE!r})")
    return meta


def load_checkpoint(
    folder: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype | None = None
) -> tuple[nn.Module, dict[str, Any]]:
    """Load ``(model, meta)`` from a checkpoint folder; ``dtype`` casts the weights.

    ``folder`` may also be a slamkit checkpoint or a hub id (see :func:`resolve_checkpoint`).
    """
    from safetensors.torch import load_file

    folder = resolve_checkpoint(folder)
    raw = raw_config(folder)
    if slamkit.is_slamkit(raw):
        return slamkit.load_slamkit(folder, raw, device, dtype)
    meta = read_meta(folder)
    cfg_path = folder / CONFIG
    if not isinstance(meta["model"], dict):
        raise CheckpointError(f"{cfg_path}: 'model' must be a mapping, got "
                              f"{type(meta['model']).__name__}")
    try:
        cfg = SpeechLMConfig.from_dict(meta["model"])
    except ValueError as e:
        raise CheckpointError(f"{cfg_path}: bad 'model' section: {e}") from e
    with reading(cfg_path, "restore config.json from the run that wrote it", CheckpointError):
        _check_vocab(meta, cfg, cfg_path)
    wpath = folder / WEIGHTS
    if not wpath.is_file():
        raise CheckpointError(f"{wpath}: missing weights file")
    # native models are built on the meta device (no wasted init); HF ones may hold
    # non-persistent buffers (rotary tables) that must be real
    with reading(cfg_path, "its 'model' section does not describe a buildable model; restore "
                 "config.json from the run that wrote it", CheckpointError):
        with torch.device("meta") if cfg.family != "hf" else contextlib.nullcontext():
            model = build_model(cfg)
    with reading(wpath, "not a safetensors file, or a damaged one: copy the checkpoint again",
                 CheckpointError):
        state = load_file(str(wpath))
    load_state(model, state, wpath)
    model.to(device=device, dtype=dtype)
    model.eval()
    return model, meta


def _check_vocab(meta: dict[str, Any], cfg: SpeechLMConfig, where: Path) -> None:
    vocab = meta.get("vocab") or {}
    if not vocab:
        return
    size = UnitVocab.from_dict(vocab).size
    if size > cfg.vocab_size:
        raise CheckpointError(
            f"{where}: vocabulary of {size} tokens (vocab section) does not fit the model's "
            f"vocab_size {cfg.vocab_size}; the checkpoint's vocab and model sections disagree"
        )
