"""The CLI adapter: every config field is a flag, help comes from the field comment, legacy
flag names still work, values go through the config's type checks, help stays fast."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from slamlm.cli import STAGES, build_parser, command, main
from slamlm.cli_adapter import config_from_args, field_comments, leaves


def _args(argv):
    return build_parser(argv).parse_args(argv)


def test_every_config_field_of_every_command_is_a_flag():
    for name in STAGES:
        cmds = command(name).subcommands or (command(name),)
        for cmd in cmds:
            argv = [name, cmd.name] if command(name).subcommands else [name]
            parser = build_parser(argv)
            sub = parser._subparsers._group_actions[0].choices[name]
            if command(name).subcommands:
                sub = sub._subparsers._group_actions[0].choices[cmd.name]
            opts = {o for a in sub._actions for o in a.option_strings}
            from slamlm.cli_adapter import load

            for leaf in leaves(load(cmd.config)):
                assert "--" + leaf.key.replace("_", "-") in opts, (name, cmd.name, leaf.key)


def test_help_comes_from_field_comments():
    from slamlm.train.config import ScheduleConfig

    assert "training-time budget" in field_comments(ScheduleConfig)["budget"]
    text = build_parser(["pretrain"])._subparsers._group_actions[0].choices["pretrain"].format_help()
    assert "training-time budget" in text and "--optim.lr" in text and "--tokens" in text


def test_legacy_flags_aliases_and_set_agree():
    a = config_from_args(command("pretrain"), _args(
        ["pretrain", "--tokens", "tk", "--max-steps", "5", "--budget", "null", "--optim.lr",
         "2e-3", "--no-train.compile"]))
    b = config_from_args(command("pretrain"), _args(
        ["pretrain", "--set", "data.tokens=tk", "--set", "train.max_steps=5", "--set",
         "train.budget=null", "--set", "train.lr=2e-3", "--set", "train.compile=false"]))
    assert a == b and a.schedule.max_steps == 5 and a.optim.lr == 2e-3 and a.train.compile is False
    e = config_from_args(command("eval").subcommands[0], _args(
        ["eval", "score", "ck", "--bench", "sblimp=a", "--bench", "ssc=b", "--batch-tokens", "99"]))
    assert e.benches == {"sblimp": "a", "ssc": "b"} and e.max_tokens == 99
    g = config_from_args(command("generate"), _args(
        ["generate", "ck", "--prompt", "a.wav", "--prompt", "b.wav", "--top-k", "7",
         "--no-dedup", "--repetition-penalty", "1.1"]))
    assert g.prompts == ["a.wav", "b.wav"] and g.sampling.top_k == 7 and g.dedup is False
    assert g.sampling.repetition_penalty == 1.1


def test_bad_values_name_the_key(capsys):
    assert main(["pack", "u", "--out", "o", "--n-units", "many"]) == 1
    assert "n_units: expected an integer, got 'many'" in capsys.readouterr().err
    assert main(["pretrain", "--optim.lr", "fast"]) == 1
    assert "optim.lr: expected a number" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["pretrain", "--train.precision", "fp8"])  # not a choice: argparse says which


def test_slam_help_is_fast_and_imports_no_torch():
    code = ("import sys, time; t=time.time(); from slamlm.cli import build_parser; "
            "build_parser(['--help']).format_help(); print('torch' in sys.modules, time.time()-t)")
    t0 = time.time()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    imported, dt = out.stdout.split()
    assert imported == "False" and float(dt) < 1.0 and time.time() - t0 < 5
