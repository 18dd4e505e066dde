"""``slam dpo CKPT --data triplets.jsonl --out RUN [--budget 30m] [--set key=value]``.

Example:
    $ slam dpo run/ckpt/step_00017625 --data spokenswag/train.jsonl --out run/dpo --budget 30m
    $ slam dpo run/init --data toy.jsonl --out run/dpo --set beta=0.2 --set max_steps=100
"""

from __future__ import annotations

import argparse

from slamlm.cli import add_common_config_args


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "dpo", help="preference alignment (DPO) on prompt/chosen/rejected triplets",
        description="DPO of a SpeechLM checkpoint. Reference log-probs are computed once and "
                    "cached in OUT/reference; re-running the command resumes. Keys for --set: "
                    "see slamlm.align.runner.DPOConfig (beta, lr, batch_pairs, max_steps, ...).",
    )
    p.add_argument("checkpoint", help="SpeechLM checkpoint folder (policy init and reference)")
    p.add_argument("--data", required=True, help="triplets JSONL (audio paths or unit lists)")
    p.add_argument("--out", required=True, help="run folder (metrics.jsonl, ckpt/, reference/)")
    p.add_argument("--budget", default=None, help="wall-clock budget, e.g. 30m or 1h")
    p.add_argument("--reference", default=None, help="reference checkpoint (default: CKPT)")
    p.add_argument("--device", default=None, help="cuda, cpu or auto (default)")
    p.add_argument("--strict", action="store_true", help="stop at the first bad triplet")
    add_common_config_args(p)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from slamlm.align.runner import DPOConfig, run_dpo
    from slamlm.config import build_config, load_yaml, merge_dicts

    file_cfg: dict = {}
    if args.config:  # a DPO-only file, or a recipe with a ``dpo:`` section
        file_cfg = load_yaml(args.config)
        if isinstance(file_cfg.get("dpo"), dict):
            file_cfg = file_cfg["dpo"]
    base = {"checkpoint": args.checkpoint, "data": args.data, "out": args.out}
    for key in ("budget", "reference", "device"):
        if getattr(args, key):
            base[key] = getattr(args, key)
    if args.strict:
        base["strict"] = True
    overrides = [o[4:] if o.startswith("dpo.") else o for o in args.overrides]
    cfg = build_config(DPOConfig, base=merge_dicts(file_cfg, base), overrides=overrides)
    final = run_dpo(cfg)
    print(f"final checkpoint: {final}")
    return 0
