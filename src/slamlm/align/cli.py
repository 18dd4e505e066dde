"""``slam dpo CKPT --data triplets.jsonl --out RUN [--budget 30m] [--set key=value]``.

DPO of a SpeechLM checkpoint. Reference log-probs are computed once and cached in
OUT/reference; re-running the command resumes. A recipe file may hold a ``dpo:`` section.

Example:
    $ slam dpo run/ckpt/step_00017625 --data spokenswag/train.jsonl --out run/dpo --budget 30m
    $ slam dpo run/init --data toy.jsonl --out run/dpo --set beta=0.2 --set max_steps=100
"""

from __future__ import annotations

from slamlm.cli_adapter import Command

COMMAND = Command(
    "dpo", "preference alignment (DPO) on prompt/chosen/rejected triplets",
    config="slamlm.align.runner:DPOConfig", run="slamlm.align.runner:run_dpo",
    positional=("checkpoint",), section="dpo", show="slamlm.align.cli:show",
    description=__doc__, flags={"--budget": "schedule.budget", "--max-steps": "schedule.max_steps",
                              "--log": "train.log"})


def show(final, cfg) -> None:
    print(f"final checkpoint: {final}")
