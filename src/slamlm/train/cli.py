"""``slam pretrain``: packed tokens + init -> ``run/ckpt/step_*`` + ``metrics.jsonl``.

Example:
    $ slam pretrain --config configs/slam.yaml --tokens run/tokens --init run/init --out run
    $ torchrun --nproc_per_node 2 -m slamlm.cli pretrain --config configs/slam_scaled.yaml
"""

from __future__ import annotations

from slamlm.cli_adapter import Command

COMMAND = Command(
    "pretrain", "pretrain a SpeechLM on packed unit tokens",
    config="slamlm.train.config:PretrainConfig", run="slamlm.train.pretrain:run_pretrain",
    description=__doc__,
    flags={"--tokens": "data.tokens", "--init": "model.init", "--budget": "schedule.budget",
           "--max-steps": "schedule.max_steps", "--log": "train.log"})
