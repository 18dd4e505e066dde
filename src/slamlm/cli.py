"""The ``slam`` command: argparse subcommands, each a thin call into a library function.

Each stage lives in its own ``<package>/cli.py`` module with a ``register(subparsers)``
function that adds its parser and sets ``func`` (called with the parsed args, returns an exit
code). Those modules import only light things at the top, so ``slam --help`` stays instant.

Example:
    $ slam units data/audio --out run/units --encoder mel
    $ slam pretrain --config configs/slam.yaml --set train.budget=24h
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

# name -> module with register(subparsers); order is the order of ``slam --help``
STAGES: dict[str, str] = {
    "units": "slamlm.units.cli",
    "synth": "slamlm.synth.cli",
    "init": "slamlm.model.cli",
    "export": "slamlm.model.export",
    "pack": "slamlm.data.cli",
    "pack-interleaved": "slamlm.data.interleave_pack",
    "pretrain": "slamlm.train.cli",
    "dpo": "slamlm.align.cli",
    "eval": "slamlm.eval.cli",
    "eval-crossmodal": "slamlm.eval.crossmodal",
    "generate": "slamlm.generate.cli",
    "report": "slamlm.report.cli",
    "demo": "slamlm.demo",
}


def add_common_config_args(p: argparse.ArgumentParser) -> None:
    """``--config FILE`` and repeated ``--set key.path=value`` for a stage's dataclass config."""
    p.add_argument("--config", default=None, help="YAML recipe (see configs/)")
    p.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a config value, e.g. --set train.lr=5e-4 (repeatable)",
    )


def build_parser() -> argparse.ArgumentParser:
    from slamlm import __version__

    parser = argparse.ArgumentParser(
        prog="slam", description="Speech Language Models on one GPU in a day (the Slam recipe)."
    )
    parser.add_argument("--version", action="version", version=f"slamlm {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    registered = set()
    for module_name in STAGES.values():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            if e.name and module_name.startswith(e.name):
                continue  # stage not built into this install
            raise
        if module_name not in registered:
            module.register(sub)
            registered.add(module_name)
    return parser


def setup_logging(verbose: bool = False, quiet: bool = False) -> None:
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S"
    )


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.verbose, args.quiet)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        logging.getLogger("slam").error("interrupted; re-run the same command to resume")
        return 130
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        if args.verbose:
            raise
        print(f"slam {args.command}: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
