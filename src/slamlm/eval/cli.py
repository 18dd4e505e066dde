"""``slam eval CKPT --bench sblimp=PATH ... --out DIR``: modelling benchmarks of a checkpoint.

Example:
    $ slam eval run/ckpt/step_00017625 --bench sblimp=zr2021/syntactic \
        --bench swuggy=zr2021/lexical --bench ssc=data/sSC --out run/eval
"""

from __future__ import annotations

import argparse

from slamlm.cli import add_common_config_args


def _bench_arg(text: str) -> tuple[str, str]:
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"--bench {text!r}: expected NAME=PATH, e.g. sblimp=data/syntactic")
    return name, path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "eval", help="score sBLIMP / sWUGGY / StoryCloze / SALMon / pairs.jsonl with a checkpoint",
        description="Likelihood evaluation: for each (positive, negative) pair, score 1 if the "
                    "model gives the positive a higher log-prob (mean per token = primary; sum "
                    "also reported), 0.5 on a tie. Layouts are detected from the folder.",
    )
    p.add_argument("checkpoint", nargs="?", default=None, help="SpeechLM checkpoint folder")
    p.add_argument("--bench", action="append", type=_bench_arg, default=[], metavar="NAME=PATH",
                   help="benchmark folder or pairs.jsonl (repeatable)")
    p.add_argument("--out", default=None, help="output folder (results.json, <bench>_pairs.jsonl)")
    p.add_argument("--batch-tokens", dest="max_tokens", type=int, default=None,
                   help="padded tokens per forward (default 16384)")
    p.add_argument("--device", default=None, help="auto (default), cpu, cuda")
    p.add_argument("--cache", default=None, help="unit cache folder (default OUT/cache)")
    p.add_argument("--subset", default=None, help="ZeroSpeech 2021 subset (default dev)")
    p.add_argument("--strict", action="store_true", default=None,
                   help="stop at the first file that cannot be encoded")
    add_common_config_args(p)
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    import json

    from slamlm.config import build_config
    from slamlm.eval.runner import EvalConfig, format_table, run_eval

    base = {k: v for k, v in {
        "checkpoint": args.checkpoint, "out": args.out, "max_tokens": args.max_tokens,
        "device": args.device, "cache": args.cache, "subset": args.subset, "strict": args.strict,
    }.items() if v is not None}
    if args.bench:
        base["benches"] = dict(args.bench)
    cfg = build_config(EvalConfig, base=base, overrides=args.overrides, config_file=args.config)
    if not str(cfg.checkpoint) or str(cfg.checkpoint) == ".":
        raise ValueError("no checkpoint given: slam eval CKPT --bench NAME=PATH --out DIR")
    path = run_eval(cfg)
    print(format_table(json.loads(path.read_text())))
    print(f"wrote {path}")
    return 0
