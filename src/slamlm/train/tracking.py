"""Where training metrics go besides ``metrics.jsonl``: TensorBoard and Weights & Biases.

``train.log`` names the extra sinks (``tensorboard``, ``wandb``; ``--log tensorboard,wandb``).
Only the main rank writes. TensorBoard event files go to ``<out>/tensorboard``; wandb runs in
the mode ``WANDB_MODE`` says (``offline`` when unset and no API key is configured, so nothing
leaves the machine by surprise) with its files under ``<out>/wandb`` and the resolved config
attached. A sink whose package is missing is an error naming the package to install.

Example:
    >>> sinks = MetricSinks([], "run")          # no extra sinks: write() does nothing
    >>> sinks.write({"step": 1, "loss": 2.0}); sinks.close()
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SINKS = ("tensorboard", "wandb")


class MetricSinks:
    """Fan-out of numeric metric rows to the configured trackers (main rank only)."""

    def __init__(self, names: Sequence[str], out: str | Path, config: dict[str, Any] | None = None,
                 run_name: str | None = None):
        unknown = sorted(set(names) - set(SINKS))
        if unknown:
            raise ValueError(f"train.log: unknown sink(s) {unknown}; use {', '.join(SINKS)}")
        self.out, self._tb, self._wandb = Path(out), None, None
        if "tensorboard" in names:
            self._tb = _tensorboard(self.out / "tensorboard")
        if "wandb" in names:
            self._wandb = _wandb(self.out, config or {}, run_name or self.out.name)

    def write(self, rec: dict[str, Any]) -> None:
        step = int(rec.get("step", 0))
        nums = {k: float(v) for k, v in rec.items()
                if k != "step" and isinstance(v, (int, float)) and not isinstance(v, bool)}
        if self._tb is not None:
            for k, v in nums.items():
                self._tb.add_scalar(_tag(k), v, step)
        if self._wandb is not None and nums:
            self._wandb.log(nums, step=step)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None
        if self._wandb is not None:
            self._wandb.finish()
            self._wandb = None


def _tag(key: str) -> str:
    """TensorBoard tag: validation and held-out metrics grouped apart from training ones."""
    if key.startswith(("val_", "heldout_")):
        return f"eval/{key}"
    if key in ("tokens_per_s", "steps_per_s", "mfu", "mem_gib", "elapsed", "wall", "eval_s",
               "ckpt_s", "tokens", "skipped"):
        return f"system/{key}"
    return f"train/{key}"


def _tensorboard(folder: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as e:
        raise ValueError("train.log=tensorboard needs the tensorboard package: "
                         "pip install tensorboard") from e
    return SummaryWriter(log_dir=str(folder))


def _wandb(out: Path, config: dict[str, Any], name: str):
    try:
        import wandb
    except ImportError as e:
        raise ValueError("train.log=wandb needs the wandb package: pip install wandb") from e
    mode = os.environ.get("WANDB_MODE") or ("online" if os.environ.get("WANDB_API_KEY")
                                            else "offline")
    out.mkdir(parents=True, exist_ok=True)
    log.info("wandb run %s in %s mode (set WANDB_MODE to change)", name, mode)
    return wandb.init(project=os.environ.get("WANDB_PROJECT", "slamlm"), name=name,
                      dir=str(out), mode=mode, config=config, reinit="finish_previous")
