"""Preference alignment (DPO) of a SpeechLM: pure loss, triplet data, cached reference, runner.

Example:
    $ slam dpo run/ckpt/step_00017625 --data triplets.jsonl --out run/dpo --budget 30m
"""

from slamlm.align.loss import dpo_loss

__all__ = ["dpo_loss"]
