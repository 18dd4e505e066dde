"""What a trainer plugs into :func:`slamlm.train.loop.fit`: an *objective*.

An objective is a few plain methods; the loop owns everything else (forward -> loss ->
backward -> clip -> AdamW -> schedule, the budget clock, checkpoints, resume, metrics,
torchrun). Pretraining (plain or interleaved shards) is :class:`slamlm.train.pretrain.
PretrainObjective`, DPO is :class:`slamlm.align.runner.DPOObjective`.

Example (the smallest objective)::

    class Regression:
        name = "regression"
        def build(self, info, resume):          # -> (model on info.device, checkpoint meta)
            return torch.nn.Linear(4, 1).to(info.device), {}
        def max_steps(self, configured): return configured
        def next_batch(self):                   # this rank's micro-batches, global item count
            x = torch.randn(8, 4); return StepBatch([(x, x.sum(1, keepdim=True))], 8, 8 * 4)
        def loss(self, model, micro):           # summed loss, summed metrics
            x, y = micro; l = ((model(x) - y) ** 2).sum(); return l, {}
        def evaluate(self, model): return {}
        def data_state(self): return {}
        def load_data_state(self, d): pass
        def checkpoint_meta(self, meta, step, tokens): return meta
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from slamlm.train.distributed import DistInfo


@dataclass
class StepBatch:
    """One optimizer step's data for this rank.

    ``micros``: this rank's micro-batches (any type the objective's ``loss`` takes);
    ``n_items``: the *global* count the summed loss is divided by (valid targets for
    pretraining, pairs for DPO); ``tokens``: global tokens in the step (for tokens/s).
    """

    micros: list[Any]
    n_items: int
    tokens: int


class Objective(Protocol):
    """The plain functions a trainer supplies to :func:`slamlm.train.loop.fit`."""

    name: str  # "pretrain", "dpo": the checkpoint meta section and log prefix

    def build(self, info: DistInfo, resume: Path | None) -> tuple[nn.Module, dict[str, Any]]:
        """Data + the model to train (from ``resume`` when given), on ``info.device``, and
        the meta its checkpoints carry (vocabulary, units identity...)."""

    def max_steps(self, configured: int) -> int:
        """The step limit (an objective may derive it, e.g. DPO from epochs)."""

    def next_batch(self) -> StepBatch:
        """The next step's micro-batches for this rank (advances the data position)."""

    def loss(self, model: nn.Module, micro: Any) -> tuple[torch.Tensor, dict[str, Any]]:
        """Summed loss of one micro-batch and metric sums (tensors or floats) on the same
        scale; the loop divides both by the step's ``n_items``."""

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """Validation metrics (called on every rank; rank 0 logs them)."""

    def data_state(self) -> dict[str, Any]:
        """JSON-able data position for an exact resume (stored in ``state.json``)."""

    def load_data_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`data_state` after a resume."""

    def checkpoint_meta(self, meta: dict[str, Any], step: int, tokens: int) -> dict[str, Any]:
        """The ``config.json`` meta of the checkpoint written at ``step``."""
