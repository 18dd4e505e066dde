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
import json
import logging
import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from slamlm.io import atomic_dir, atomic_write_json
from slamlm.model.config import SpeechLMConfig
from slamlm.vocab import UnitVocab

log = logging.getLogger(__name__)

WEIGHTS, CONFIG = "model.safetensors", "config.json"


class CheckpointError(ValueError):
    """A checkpoint folder is missing files or does not match its config."""


def _state_for_saving(model: nn.Module) -> dict[str, torch.Tensor]:
    """State dict without tied duplicates (safetensors refuses shared storage)."""
    state, seen = {}, {}
    for name, t in model.state_dict().items():
        key = (t.data_ptr(), t.shape, t.dtype)
        if t.data_ptr() and key in seen:
            continue
        seen[key] = name
        state[name] = t.detach().contiguous().cpu()
    return state


def write_checkpoint_files(model: nn.Module, meta: dict[str, Any], folder: Path) -> None:
    """Write weights + config.json into an existing folder (non-atomic; see save_checkpoint)."""
    from safetensors.torch import save_file

    extra = getattr(model, "checkpoint_extra", None)
    config = {"model": model.config.to_dict(), "vocab": {}, "units": {}, "init": {}}
    config.update({k: v for k, v in meta.items() if k != "model"})
    if extra is not None:
        config.update(extra())
    save_file(_state_for_saving(model), str(folder / WEIGHTS), metadata={"format": "pt"})
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


def read_json(path: Path, missing: str, error: type[Exception] = ValueError,
              missing_error: type[Exception] = FileNotFoundError) -> Any:
    """Parse JSON file ``path``; errors name it (``missing_error`` with ``missing`` if absent)."""
    if not path.is_file():
        raise missing_error(f"{path}: {missing}")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise error(f"{path}: not valid JSON ({e})") from e


def _looks_like_hub_id(source: str) -> bool:
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
    if folder.is_dir() or not _looks_like_hub_id(str(source)):
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


def _raw_config(folder: Path) -> dict[str, Any]:
    return read_json(folder / CONFIG, f"missing (is {folder} a SpeechLM checkpoint from `slam "
                     "init`, or a slamkit one?)", CheckpointError, CheckpointError)


def read_meta(folder: str | Path) -> dict[str, Any]:
    """Parse ``config.json`` of a checkpoint folder (or hub id), with errors naming the file.

    A slamkit folder gives the same sections, derived from its own files.
    """
    from slamlm.model import slamkit

    folder = resolve_checkpoint(folder)
    path = folder / CONFIG
    meta = _raw_config(folder)
    if slamkit.is_slamkit(meta):
        return slamkit.slamkit_meta(folder, meta)
    if not isinstance(meta, dict) or "model" not in meta:
        raise CheckpointError(
            f"{path}: no 'model' section: neither a SpeechLM checkpoint (slam init / pretrain) "
            f"nor a slamkit one (model_type {slamkit.MODEL_TYPE!r})")
    return meta


def build_model(cfg: SpeechLMConfig) -> nn.Module:
    """An (initialised) model for ``cfg``: native or generic HF."""
    if cfg.family == "hf":
        from slamlm.model.generic import GenericSpeechLM

        return GenericSpeechLM.from_config(cfg)
    from slamlm.model.transformer import SpeechLM

    return SpeechLM(cfg)


def load_checkpoint(
    folder: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype | None = None
) -> tuple[nn.Module, dict[str, Any]]:
    """Load ``(model, meta)`` from a checkpoint folder; ``dtype`` casts the weights.

    ``folder`` may also be a slamkit checkpoint or a hub id (see :func:`resolve_checkpoint`).
    """
    from safetensors.torch import load_file

    from slamlm.model import slamkit

    folder = resolve_checkpoint(folder)
    raw = _raw_config(folder)
    if slamkit.is_slamkit(raw):
        return slamkit.load_slamkit(folder, raw, device, dtype)
    meta = read_meta(folder)
    cfg_path = folder / CONFIG
    try:
        cfg = SpeechLMConfig.from_dict(meta["model"])
    except ValueError as e:
        raise CheckpointError(f"{cfg_path}: bad 'model' section: {e}") from e
    _check_vocab(meta, cfg, cfg_path)
    wpath = folder / WEIGHTS
    if not wpath.is_file():
        raise CheckpointError(f"{wpath}: missing weights file")
    # native models are built on the meta device (no wasted init); HF ones may hold
    # non-persistent buffers (rotary tables) that must be real
    with torch.device("meta") if cfg.family != "hf" else contextlib.nullcontext():
        model = build_model(cfg)
    state = load_file(str(wpath))
    _load_state(model, state, wpath)
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


def _load_state(model: nn.Module, state: dict[str, torch.Tensor], where: Path) -> None:
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
