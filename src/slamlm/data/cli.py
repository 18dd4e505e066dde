"""``slam pack UNITS --out TOKENS``: units JSONL folder -> token shards.

Example:
    $ slam pack run/units --out run/tokens --val-fraction 0.01 --context 1024
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    from slamlm.cli import add_common_config_args

    p = sub.add_parser("pack", help="pack units JSONL into token shards (train/val .bin + index)")
    p.add_argument("units", nargs="?", default=None, help="units folder (*.jsonl[.gz]) or file")
    p.add_argument("--out", default=None, help="output tokens folder")
    p.add_argument("--n-units", type=int, default=None, help="k of the k-means (default 500)")
    p.add_argument("--context", type=int, default=None, help="max document piece length (1024)")
    p.add_argument("--val-fraction", type=float, default=None, help="validation share (0.01)")
    p.add_argument("--strict", action="store_true", help="stop at the first bad record")
    add_common_config_args(p)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from slamlm.config import build_config
    from slamlm.data.pack import PackConfig, run_pack

    base = {k: v for k, v in {"units": args.units, "out": args.out, "n_units": args.n_units,
                              "context": args.context, "val_fraction": args.val_fraction}.items()
            if v is not None}
    if args.strict:
        base["strict"] = True
    cfg = build_config(PackConfig, base=base, overrides=args.overrides, config_file=args.config)
    out = run_pack(cfg)
    print(out)
    return 0
