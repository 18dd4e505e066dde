"""``slam init``: a SpeechLM checkpoint from a text LM (TWIST) or a random named shape.

Example:
    $ slam init path/to/Qwen2.5-0.5B --out run/init --units 500
    $ slam init SmolLM2-135M-Instruct.Q4_1.gguf --out run/init --embed-init mean
    $ slam init --shape slam-358m --out run/init_random
"""

from __future__ import annotations

import argparse
from typing import Any

from slamlm.cli import add_common_config_args

KEYS = ("text_lm", "out", "gguf_file", "shape", "units", "embed_init", "seed", "rope_theta",
        "units_identity", "keep_layers", "force")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "init", help="text LM (TWIST) or named shape -> initial SpeechLM checkpoint",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("text_lm", nargs="?", default=None,
                   help="text LM folder, hub id or .gguf file (omit for random init)")
    p.add_argument("--out", default=None, help="checkpoint folder to write (default run/init)")
    p.add_argument("--gguf-file", dest="gguf_file", default=None,
                   help="GGUF file name inside the text_lm folder")
    p.add_argument("--shape", default=None,
                   help="named shape for random init: tiny, small, slam-135m, slam-358m, slam-1b")
    p.add_argument("--units", type=int, default=None, help="number of units (default 500)")
    p.add_argument("--embed-init", dest="embed_init", default=None,
                   choices=("stats", "mean", "keep-first", "random"),
                   help="unit-embedding init (default stats; keep-first = slamkit's)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--rope-theta", dest="rope_theta", type=float, default=None,
                   help="RoPE theta of the SpeechLM (default 10000)")
    p.add_argument("--units-identity", dest="units_identity", default=None,
                   help="JSON file with the unit extractor identity to record")
    p.add_argument("--keep-layers", dest="keep_layers", type=int, default=None,
                   help="keep only the first N blocks of the text LM (small-compute runs)")
    p.add_argument("--force", action="store_true", default=None, help="replace an existing --out")
    add_common_config_args(p)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from slamlm.config import build_config
    from slamlm.model.init import InitConfig, run_init

    base = {k: getattr(args, k) for k in KEYS if getattr(args, k, None) is not None}
    cfg = build_config(InitConfig, base=base, overrides=args.overrides, config_file=args.config)
    print(run_init(cfg))
    return 0
