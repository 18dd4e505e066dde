"""``slam generate CKPT --prompt a.wav [--prompt b.wav] | --prompt-units units.jsonl --out DIR``.

Example:
    $ slam generate run/ckpt/step_00001000 --prompt a.wav --out run/gen --vocoder mel
    $ slam generate CKPT --prompt-units prompts.jsonl --out gen --temperature 0.8 --top-k 25 \\
          --metrics --asr pocketsphinx --lm smollm2
"""

from __future__ import annotations

import argparse
import json
import logging

from slamlm.cli import add_common_config_args

log = logging.getLogger(__name__)

SAMPLING_FLAGS = {  # flag -> (field, type)
    "--max-new-tokens": ("max_new_tokens", int), "--temperature": ("temperature", float),
    "--top-k": ("top_k", int), "--top-p": ("top_p", float),
    "--repetition-penalty": ("repetition_penalty", float), "--seed": ("seed", int),
    "--batch-size": ("batch_size", int),
}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("generate", help="continue audio prompts with a SpeechLM and vocode",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", help="checkpoint folder (model.safetensors + config.json)")
    p.add_argument("--prompt", action="append", default=None, help="prompt audio (repeatable)")
    p.add_argument("--prompt-units", default=None, help="units JSONL with prompts instead of audio")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--vocoder", default=None, help="mel | hifigan:PATH | auto (default)")
    p.add_argument("--prompt-seconds", type=float, default=None,
                   help="use the first N seconds of each prompt (default 3; 0 = whole)")
    p.add_argument("--device", default=None)
    for flag, (_, tp) in SAMPLING_FLAGS.items():
        p.add_argument(flag, type=tp, default=None)
    p.add_argument("--no-dedup", action="store_true", help="the model uses frame-level units")
    p.add_argument("--metrics", action="store_true", help="also compute GenPPL and Auto-BLEU")
    p.add_argument("--asr", default="pocketsphinx", help="pocketsphinx | whisper[:ID or folder]")
    p.add_argument("--lm", default="smollm2", help="smollm2 | llama | HF folder or hub id")
    p.add_argument("--strict", action="store_true", help="stop at the first bad prompt")
    add_common_config_args(p)
    p.set_defaults(func=main)


def _base(args: argparse.Namespace) -> dict:
    base: dict = {"checkpoint": args.checkpoint, "out": args.out, "strict": args.strict}
    if args.prompt:
        base["prompts"] = args.prompt
    if args.prompt_units:
        base["prompt_units"] = args.prompt_units
    if args.vocoder:
        base["vocoder"] = args.vocoder
    if args.prompt_seconds is not None:
        base["prompt_seconds"] = args.prompt_seconds or None
    if args.device:
        base["device"] = args.device
    if args.no_dedup:
        base["dedup"] = False
    sampling = {f: getattr(args, f) for f, _ in SAMPLING_FLAGS.values() if getattr(args, f) is not None}
    if sampling:
        base["sampling"] = sampling
    return base


def main(args: argparse.Namespace) -> int:
    from slamlm.config import build_config
    from slamlm.generate.runner import GenerateConfig, run_generate

    cfg = build_config(GenerateConfig, base=_base(args), overrides=args.overrides,
                       config_file=args.config)
    if args.metrics:
        from slamlm.eval.genmetrics import load_scorers, metrics_for_generations

        scorers = load_scorers(args.asr, args.lm)  # a missing ASR/LM fails before generating
        out = run_generate(cfg)
        result = metrics_for_generations(out, scorers=scorers)
        summary = {k: result[k] for k in ("genppl", "auto_bleu", "genppl_token_weighted",
                                          "auto_bleu_ws_pct", "n")}
        print(json.dumps(summary))
        return 0
    out = run_generate(cfg)
    print(out)
    return 0
