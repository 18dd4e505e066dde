"""``slam pretrain``: packed tokens + init -> ``run/ckpt/step_*`` + ``metrics.jsonl``.

Example:
    $ slam pretrain --config configs/slam.yaml --tokens run/tokens --init run/init --out run
    $ torchrun --nproc_per_node 2 -m slamlm.cli pretrain --config configs/slam_scaled.yaml
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    from slamlm.cli import add_common_config_args

    p = sub.add_parser("pretrain", help="pretrain a SpeechLM on packed unit tokens")
    p.add_argument("--tokens", default=None, help="tokens folder from slam pack (data.tokens)")
    p.add_argument("--init", default=None, help="slam init folder (model.init)")
    p.add_argument("--out", default=None, help="run folder (checkpoints, metrics.jsonl)")
    p.add_argument("--budget", default=None, help="training-time budget: 90s, 30m, 24h (schedule.budget)")
    p.add_argument("--max-steps", type=int, default=None, help="step limit (schedule.max_steps)")
    p.add_argument("--resume", default=None, help="auto (default), none, or a step_* folder")
    add_common_config_args(p)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from slamlm.config import build_config
    from slamlm.train.config import PretrainConfig
    from slamlm.train.pretrain import run_pretrain

    base: dict = {}
    for key, val in (("data.tokens", args.tokens), ("model.init", args.init), ("out", args.out),
                     ("schedule.budget", args.budget), ("schedule.max_steps", args.max_steps),
                     ("resume", args.resume)):
        if val is not None:
            head, _, tail = key.partition(".")
            (base.setdefault(head, {}).__setitem__(tail, val) if tail else base.__setitem__(head, val))
    cfg = build_config(PretrainConfig, base=base, overrides=args.overrides, config_file=args.config)
    print(run_pretrain(cfg))
    return 0
