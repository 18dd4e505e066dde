"""The ``slam`` command: one subcommand per stage, flags derived from each stage's config.

Each stage's ``<package>/cli.py`` declares ``COMMAND`` (a :class:`slamlm.cli_adapter.Command`:
config class, ``run_<stage>`` function, positional keys, legacy flag names) and imports
nothing heavy, so ``slam --help`` is instant; only the chosen command's config is imported.

Example:
    $ slam units data/audio --out run/units --encoder mel
    $ slam pretrain --config configs/slam.yaml --set schedule.max_steps=17625
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from slamlm.cli_adapter import Command, add_command_args, load, run_command

# name -> "module:ATTR" of its Command; order is the order of ``slam --help``
STAGES: dict[str, str] = {
    "units": "slamlm.units.cli:COMMAND",
    "synth": "slamlm.synth.cli:COMMAND",
    "init": "slamlm.model.cli:COMMAND",
    "export": "slamlm.model.cli:EXPORT",
    "pack": "slamlm.data.cli:COMMAND",
    "align-words": "slamlm.words.cli:COMMAND",
    "pack-interleaved": "slamlm.interleave.cli:PACK",
    "init-interleaved": "slamlm.interleave.cli:INIT",
    "pretrain": "slamlm.train.cli:COMMAND",
    "dpo": "slamlm.align.cli:COMMAND",
    "eval": "slamlm.eval.cli:COMMAND",
    "eval-crossmodal": "slamlm.eval.cli:CROSSMODAL",
    "generate": "slamlm.generate.cli:COMMAND",
    "vocoder": "slamlm.vocoder.cli:COMMAND",
    "report": "slamlm.report.cli:COMMAND",
    "demo": "slamlm.demo:COMMAND",
}


def command(name: str) -> Command:
    return load(STAGES[name])


def _selected(argv: list[str]) -> list[str]:
    """The command (and subcommand) names the arguments choose, e.g. ``["units", "extract"]``."""
    words = [a for a in argv if not a.startswith("-")]
    if not words or words[0] not in STAGES:
        return []
    cmd = command(words[0])
    if not cmd.subcommands:
        return [cmd.name]
    subs = {c.name for c in cmd.subcommands}
    rest = argv[argv.index(words[0]) + 1:]
    first = next((a for a in rest if not a.startswith("-")), None)
    return [cmd.name, first if first in subs else cmd.default]


def _add(sub: argparse._SubParsersAction, cmd: Command, chosen: list[str]) -> None:
    p = sub.add_parser(cmd.name, help=cmd.help, description=cmd.description or cmd.help,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    if cmd.subcommands:
        inner = p.add_subparsers(dest=f"{cmd.name}_command", metavar="SUBCOMMAND")
        for c in cmd.subcommands:
            _add(inner, c, chosen[1:] if chosen and chosen[0] == cmd.name else [])
        p.set_defaults(func=lambda args: (p.print_help(), 2)[1])
        return
    if chosen and chosen[0] == cmd.name:
        add_command_args(p, cmd)
        p.set_defaults(func=lambda args: run_command(cmd, args))


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser; only the command chosen by ``argv`` gets its (config-derived) flags."""
    from slamlm import __version__

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="slam", description="Speech Language Models on one GPU in a day (the Slam recipe).")
    parser.add_argument("--version", action="version", version=f"slamlm {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = _selected(argv)
    for name in STAGES:
        _add(sub, command(name), chosen)
    return parser


def _default_subcommand(argv: list[str]) -> list[str]:
    """``slam units IN ...`` means ``slam units extract IN ...`` (a group's default)."""
    chosen = _selected(argv)
    if len(chosen) == 2:
        name = chosen[0]
        at = argv.index(name) + 1
        rest = argv[at:]
        first = next((a for a in rest if not a.startswith("-")), None)
        subs = {c.name for c in command(name).subcommands}
        if first not in subs and not ({"-h", "--help"} & set(rest) and first is None):
            argv = [*argv[:at], chosen[1], *rest]
    return argv


def setup_logging(verbose: bool = False, quiet: bool = False) -> None:
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S"
    )


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    argv = _default_subcommand(list(sys.argv[1:] if argv is None else argv))
    parser = build_parser(argv)
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
    except (ValueError, FileNotFoundError, RuntimeError, OSError, KeyError) as e:
        if args.verbose or args.debug:
            raise
        print(f"slam {args.command}: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
