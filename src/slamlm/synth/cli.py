"""``slam synth``: spoken stories, synthetic benchmarks, preference triplets.

Example:
    $ slam synth stories --n 1000 --voices en-us,en-us+f3 --out data/synth --workers 2
    $ slam synth stories --text my_stories.txt --out data/mine
    $ slam synth benchmarks --out data/bench --n 100
    $ slam synth preferences --n 500 --out data/prefs
"""

from __future__ import annotations

import argparse


def _common(p: argparse.ArgumentParser, n_default: int | None) -> None:
    from slamlm.cli import add_common_config_args

    p.add_argument("--out", default=None, help="output folder")
    p.add_argument("--n", type=int, default=n_default, help="number of items")
    p.add_argument("--seed", type=int, default=None, help="seed of the text/voice streams")
    p.add_argument("--voices", default=None, help="comma-separated espeak-ng voices")
    p.add_argument("--workers", type=int, default=None, help="TTS worker processes")
    p.add_argument("--strict", action="store_true", help="stop at the first failure")
    add_common_config_args(p)


def register(subparsers) -> None:
    p = subparsers.add_parser("synth", help="synthetic speech: stories, benchmarks, preferences")
    sub = p.add_subparsers(dest="synth_command", metavar="WHAT", required=True)
    s = sub.add_parser("stories", help="spoken story corpus (audio + manifest.jsonl)")
    _common(s, None)
    s.add_argument("--text", default=None, help="user text: .txt (blank-line paragraphs) or .jsonl")
    s.set_defaults(func=_stories)
    b = sub.add_parser("benchmarks", help="sWUGGY/sBLIMP/sSC/tSC/SALMon-like eval sets")
    _common(b, None)
    b.set_defaults(func=_benchmarks)
    d = sub.add_parser("preferences", help="SpokenSwag-like DPO triplets")
    _common(d, None)
    d.set_defaults(func=_preferences)


def _base(args) -> dict:
    base: dict = {}
    for key in ("out", "n", "seed", "workers"):
        if getattr(args, key, None) is not None:
            base[key] = getattr(args, key)
    if args.voices:
        base["voices"] = [v.strip() for v in args.voices.split(",") if v.strip()]
    if args.strict:
        base["strict"] = True
    if getattr(args, "text", None):
        base["text"] = args.text
    return base


def _stories(args) -> int:
    from slamlm.config import build_config
    from slamlm.synth.corpus import SynthConfig, run_synth

    cfg = build_config(SynthConfig, _base(args), args.overrides, args.config)
    print(run_synth(cfg))
    return 0


def _benchmarks(args) -> int:
    from slamlm.config import build_config
    from slamlm.synth.benchmarks import BenchConfig, run_benchmarks

    cfg = build_config(BenchConfig, _base(args), args.overrides, args.config)
    print(run_benchmarks(cfg))
    return 0


def _preferences(args) -> int:
    from slamlm.config import build_config
    from slamlm.synth.preferences import PrefConfig, run_preferences

    cfg = build_config(PrefConfig, _base(args), args.overrides, args.config)
    print(run_preferences(cfg))
    return 0
