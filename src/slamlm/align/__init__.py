"""Preference alignment (DPO) of a SpeechLM: pure loss, triplet data, cached reference, runner.

Example:
    $ slam dpo run/ckpt/step_00017625 --data triplets.jsonl --out run/dpo --budget 30m
"""

from typing import Any

__all__ = ["dpo_loss"]


def __getattr__(name: str) -> Any:  # lazy: keeps `slam --help` free of torch
    if name == "dpo_loss":
        from slamlm.align.loss import dpo_loss

        return dpo_loss
    raise AttributeError(name)
