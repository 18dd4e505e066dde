"""Training checkpoints: ``run/ckpt/step_00001234/`` written atomically, newest complete resumed.

A folder holds ``model.safetensors`` + ``config.json`` (the model package's format, so eval and
generate load it directly), ``optimizer.pt``, ``state.json`` (step, tokens, RNG states, data
position, elapsed time, skipped steps) and the resolved ``run.yaml``.

Example:
    >>> # path = save_train_checkpoint(run / "ckpt", 1234, model, opt, state, cfg, meta, info)
    >>> # latest = find_latest(run / "ckpt")    # None when there is nothing to resume
"""

from __future__ import annotations

import base64
import json
import logging
import os
import random
import re
import shutil
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from slamlm.config import dump_config
from slamlm.io import atomic_dir, atomic_write_json
from slamlm.train.distributed import DistInfo

log = logging.getLogger(__name__)

FILES = ("model.safetensors", "config.json", "optimizer.pt", "state.json", "run.yaml")
_STEP_RE = re.compile(r"^step_(\d{8})$")


def ckpt_name(step: int) -> str:
    return f"step_{step:08d}"


def rng_state() -> dict[str, Any]:
    """Python/numpy/torch(/cuda) RNG states as JSON-able values."""
    py = random.getstate()
    np_state = np.random.get_state()
    out = {"python": [py[0], list(py[1]), py[2]],
           "numpy": [np_state[0], np_state[1].tolist(), *map(float, np_state[2:])],
           "torch": base64.b64encode(torch.get_rng_state().numpy().tobytes()).decode()}
    if torch.cuda.is_available():
        out["cuda"] = base64.b64encode(torch.cuda.get_rng_state().numpy().tobytes()).decode()
    return out


def set_rng_state(s: dict[str, Any]) -> None:
    random.setstate((s["python"][0], tuple(s["python"][1]), s["python"][2]))
    n = s["numpy"]
    np.random.set_state((n[0], np.asarray(n[1], dtype=np.uint32), int(n[2]), int(n[3]), n[4]))
    torch.set_rng_state(torch.frombuffer(bytearray(base64.b64decode(s["torch"])), dtype=torch.uint8))
    if "cuda" in s and torch.cuda.is_available():
        torch.cuda.set_rng_state(
            torch.frombuffer(bytearray(base64.b64decode(s["cuda"])), dtype=torch.uint8))


def _full_states(model: nn.Module, opt: torch.optim.Optimizer, sharded: bool):
    """(model state, optimizer state) as full CPU tensors; collective when ``sharded``."""
    if not sharded:
        return None, opt.state_dict()
    from torch.distributed.checkpoint.state_dict import (
        StateDictOptions,
        get_model_state_dict,
        get_optimizer_state_dict,
    )

    opts = StateDictOptions(full_state_dict=True, cpu_offload=True)
    return get_model_state_dict(model, options=opts), get_optimizer_state_dict(model, opt, options=opts)


def _cpu_copy(model: nn.Module, state: dict[str, torch.Tensor]) -> nn.Module:
    """A plain CPU model holding ``state`` (used to save an FSDP-sharded model)."""
    from slamlm.model.checkpoint import build_model

    with torch.device("meta"):
        plain = build_model(model.config)
    plain.load_state_dict(state, strict=False, assign=True)
    if hasattr(plain, "tie_weights"):
        plain.tie_weights()
    if hasattr(plain, "rebuild_buffers"):
        plain.rebuild_buffers()
    return plain


def save_train_checkpoint(root: Path, step: int, model: nn.Module, opt: torch.optim.Optimizer,
                          state: dict[str, Any], run_cfg: Any, meta: dict[str, Any],
                          info: DistInfo, sharded: bool = False, keep_last: int = 3) -> Path:
    """Write ``root/step_XXXXXXXX`` (rank 0 writes; every rank must call when sharded)."""
    from slamlm.model.checkpoint import write_checkpoint_files

    model_state, opt_state = _full_states(model, opt, sharded)
    final = Path(root) / ckpt_name(step)
    if not info.is_main:
        return final
    to_save = _cpu_copy(model, model_state) if sharded else model
    with atomic_dir(final) as tmp:
        write_checkpoint_files(to_save, meta, tmp)
        torch.save(opt_state, tmp / "optimizer.pt")
        dump_config(run_cfg, tmp / "run.yaml")
        _copy_text_tokenizer(root, run_cfg, meta, tmp)
        atomic_write_json(tmp / "state.json", {**state, "rng": rng_state()}, indent=None)
    prune(root, keep_last)
    log.info("saved %s", final)
    return final


def _copy_text_tokenizer(root: Path, run_cfg: Any, meta: dict[str, Any], tmp: Path) -> None:
    """Copy an interleaved model's ``text_tokenizer/`` folder into the checkpoint being written.

    Looked for in the init folder (``model.init``; DPO's ``checkpoint``), an explicit resume
    folder, the newest ``step_*`` under ``root``, then the meta's absolute
    ``text_tokenizer_dir``; a plain (speech-only) checkpoint has none and copies nothing.
    """
    sub = meta.get("text_tokenizer")
    if not sub:
        return
    bases = [getattr(getattr(run_cfg, "model", None), "init", None),
             getattr(run_cfg, "checkpoint", None), getattr(run_cfg, "resume", None)]
    cands = [Path(b) / sub for b in bases if b and str(b) not in ("auto", "none")]
    cands += [c / sub for c in reversed(list_checkpoints(root))]
    if meta.get("text_tokenizer_dir"):
        cands.append(Path(meta["text_tokenizer_dir"]))
    src = next((c for c in cands if c.is_dir()), None)
    if src is None:
        log.warning("interleaved checkpoint without its text tokenizer: none of %s exists",
                    ", ".join(map(str, cands)))
        return
    shutil.copytree(src, tmp / sub)


def incomplete_reason(folder: Path) -> str | None:
    """Why ``folder`` cannot be resumed from, or None when it is complete and readable."""
    missing = [f for f in FILES if not (folder / f).is_file()]
    if missing:
        return f"missing {', '.join(missing)}"
    try:
        from safetensors import safe_open

        with safe_open(str(folder / "model.safetensors"), framework="pt") as f:
            f.keys()
        json.loads((folder / "state.json").read_text())
        json.loads((folder / "config.json").read_text())
        with zipfile.ZipFile(folder / "optimizer.pt") as z:  # torch.save's zip: a cut or
            z.namelist()  # garbled file has no readable central directory (cheap to check)
    except Exception as e:  # noqa: BLE001 - any unreadable file disqualifies the folder
        return f"unreadable ({type(e).__name__}: {e})"
    return None


def resume_folder(resume: str, root: Path) -> Path | None:
    """The folder a run resumes from: ``none`` -> None, ``auto`` -> :func:`find_latest` of
    ``root``, else that step folder (refused when it is incomplete)."""
    if resume == "none":
        return None
    if resume == "auto":
        return find_latest(root)
    folder = Path(resume)
    reason = incomplete_reason(folder)
    if reason:
        raise FileNotFoundError(f"resume={folder}: cannot resume from it ({reason})")
    return folder


def list_checkpoints(root: Path) -> list[Path]:
    """``step_*`` folders under ``root``, oldest first."""
    if not Path(root).is_dir():
        return []
    return sorted(p for p in Path(root).iterdir() if p.is_dir() and _STEP_RE.match(p.name))


def find_latest(root: Path) -> Path | None:
    """Newest complete checkpoint; incomplete ones are skipped with a warning."""
    for folder in reversed(list_checkpoints(root)):
        reason = incomplete_reason(folder)
        if reason is None:
            return folder
        log.warning("skipping checkpoint %s: %s", folder, reason)
    return None


def prune(root: Path, keep_last: int) -> None:
    """Delete all but the newest ``keep_last`` checkpoints (0 keeps everything).

    A folder is first renamed to a hidden ``.step_*.del`` name, then deleted, so a kill
    mid-delete never leaves a half-deleted folder under a ``step_*`` name; hidden leftovers of
    killed saves/deletes (``.step_*.tmp-*``, ``.step_*.old-*``, ``.step_*.del``) are removed too
    (only the main rank saves, so no live writer owns them).
    """
    root = Path(root)
    if root.is_dir():
        for stale in root.glob(".step_*"):
            shutil.rmtree(stale, ignore_errors=True)
    if keep_last <= 0:
        return
    for folder in list_checkpoints(root)[:-keep_last]:
        doomed = folder.with_name(f".{folder.name}.del")
        os.replace(folder, doomed)
        shutil.rmtree(doomed, ignore_errors=True)


def read_state(folder: Path) -> dict[str, Any]:
    return json.loads((Path(folder) / "state.json").read_text())


def load_optimizer(opt: torch.optim.Optimizer, model: nn.Module, folder: Path,
                   sharded: bool = False) -> None:
    """Restore the optimizer from ``folder/optimizer.pt`` (full state; sharded when FSDP)."""
    state = torch.load(Path(folder) / "optimizer.pt", map_location="cpu", weights_only=True)
    if not sharded:
        opt.load_state_dict(state)
        return
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

    set_optimizer_state_dict(model, opt, state,
                             options=StateDictOptions(full_state_dict=True, broadcast_from_rank0=False))
