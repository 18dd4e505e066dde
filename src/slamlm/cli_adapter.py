"""The one CLI adapter: a stage's flags are derived from its config dataclass.

A stage declares a :class:`Command` (its config class, its ``run_<stage>`` function, which
config keys are positional, and any short or legacy flag names) and nothing else. Every leaf
field of the config becomes a flag: ``out`` -> ``--out``, ``n_units`` -> ``--n-units``,
``optim.lr`` -> ``--optim.lr``; its help is the field's comment and its default. Values go
through the same type checks as ``--config`` YAML and ``--set key=value`` (``slamlm.config``),
so there is one validator and every error names the key. Booleans get ``--x/--no-x``; list
fields repeat (``--prompt a.wav --prompt b.wav``, or ``a,b``); dict fields take ``NAME=VALUE``.

Only the selected command's config module is imported, so ``slam --help`` stays fast.

Why not jsonargparse or tyro: both would bring a second type checker beside
``config.from_dict`` (which also moves old key names via ``ALIASES`` and words the errors),
and neither maps our positional/legacy flag names without per-stage code; deriving argparse
flags from the dataclass fields (~200 lines) keeps one source of truth.

Example:
    >>> cmd = Command("pack", "pack units", "slamlm.data.pack:PackConfig",
    ...               "slamlm.data.pack:run_pack", positional=("units",))
    >>> import argparse; p = argparse.ArgumentParser(prog="slam pack"); add_command_args(p, cmd)
    >>> sorted(o for a in p._actions for o in a.option_strings if o.startswith("--n-u"))
    ['--n-units']
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import importlib
import inspect
import textwrap
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from slamlm.config import merge_dicts

SKIP = None  # the value of a flag that was not given


@dataclass(frozen=True)
class Command:
    """A ``slam`` (sub)command: config class + run function, both as ``"module:name"``.

    ``positional``: config keys taken as optional positional arguments, in order.
    ``flags``: extra flag -> config key (short or legacy names, e.g. ``"--tokens":
    "data.tokens"``). ``section``: a recipe file section read for this command (``dpo``).
    ``show``: ``"module:function"`` printing the result (default: print it).
    ``subcommands``: for a group (``slam units extract ...``); ``default`` is used when the
    first argument is not a subcommand name.
    """

    name: str
    help: str
    config: str = ""
    run: str = ""
    positional: tuple[str, ...] = ()
    flags: Mapping[str, str] = field(default_factory=dict)
    section: str = ""
    show: str = ""
    description: str = ""
    subcommands: tuple[Command, ...] = ()
    default: str = ""


def load(spec: str) -> Any:
    """``"pkg.module:attr"`` -> the attribute."""
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr)


@dataclass(frozen=True)
class Leaf:
    """One leaf field of a (nested) config dataclass."""

    key: str  # dotted path, e.g. optim.lr
    tp: Any
    default: Any
    help: str


def field_comments(cls: type) -> dict[str, str]:
    """``{field: comment}`` from the class source: a trailing ``# ...`` or the comment lines
    just above the field."""
    try:
        lines = textwrap.dedent(inspect.getsource(cls)).splitlines()
    except (OSError, TypeError):
        return {}
    out: dict[str, str] = {}
    tree = ast.parse("\n".join(lines))
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    for node in body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        line = lines[node.end_lineno - 1]
        text = line.split("  # ", 1)[1].strip() if "  # " in line else ""
        above, i = [], node.lineno - 2
        while i >= 0 and lines[i].strip().startswith("#"):
            above.insert(0, lines[i].strip().lstrip("#").strip())
            i -= 1
        out[node.target.id] = " ".join([*above, text]).strip()
    return out


def leaves(cls: type, prefix: str = "", default: Any = None) -> list[Leaf]:
    """Every leaf field of dataclass ``cls`` (nested sections flattened with dots)."""
    hints = typing.get_type_hints(cls)
    comments = field_comments(cls)
    inst = default
    out: list[Leaf] = []
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        value = getattr(inst, f.name) if inst is not None else _field_default(f)
        key = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(tp):
            out += leaves(tp, f"{key}.", value)
        else:
            out.append(Leaf(key, tp, value, comments.get(f.name, "")))
    return out


def _field_default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def _flag(key: str) -> str:
    return "--" + key.replace("_", "-")


def _kind(tp: Any) -> tuple[str, Any]:
    """('bool' | 'list' | 'dict' | 'choice' | 'text' | 'value', detail) of a field type."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        return _kind(rest[0]) if len(rest) == 1 else ("value", None)
    if tp is bool:
        return "bool", None
    if origin is typing.Literal:
        return "choice", args
    if origin in (list, tuple) or tp in (list, tuple):
        return "list", None
    if origin in (dict, Mapping) or tp is dict:
        return "dict", None
    if tp in (str, Path):
        return "text", None
    return "value", None


def add_command_args(p: argparse.ArgumentParser, cmd: Command) -> None:
    """Flags of every config field, the command's own names, ``--config`` and ``--set``."""
    cls = load(cmd.config)
    by_key = {leaf.key: leaf for leaf in leaves(cls)}
    for key in cmd.positional:
        leaf = by_key[key]
        p.add_argument(f"_pos_{key}", nargs="?", default=SKIP, metavar=key.split(".")[-1].upper(),
                       help=f"{leaf.help or key} (= {_flag(key)})")
    names: dict[str, list[str]] = {key: [_flag(key)] for key in by_key}
    for flag, key in cmd.flags.items():
        if key not in by_key:
            raise KeyError(f"{cmd.name}: flag {flag} names unknown config key {key!r}")
        names[key].insert(0, flag)
    for key, leaf in by_key.items():
        _add_leaf(p, names[key], leaf)
    p.add_argument("--config", default=None, help="YAML recipe (see configs/)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override any config value, e.g. --set optim.lr=5e-4 (repeatable)")


def _add_leaf(p: argparse.ArgumentParser, flags: list[str], leaf: Leaf) -> None:
    kind, detail = _kind(leaf.tp)
    shown = "none" if leaf.default in (None, "") else leaf.default
    text = f"{leaf.help} (default: {shown})" if leaf.help else f"default: {shown}"
    text = text.replace("%", "%%")  # argparse formats help with %
    dest = "_cfg_" + leaf.key
    meta = leaf.key.split(".")[-1].upper()
    if kind == "bool":
        p.add_argument(*flags, dest=dest, action=argparse.BooleanOptionalAction, default=SKIP,
                       help=text)
    elif kind in ("list", "dict"):
        p.add_argument(*flags, dest=dest, action="append", default=SKIP, metavar=(
            "NAME=VALUE" if kind == "dict" else meta), help=text + " (repeatable)")
    elif kind == "choice":
        p.add_argument(*flags, dest=dest, default=SKIP, choices=detail, help=text)
    else:
        p.add_argument(*flags, dest=dest, default=SKIP, metavar=meta, help=text)


def _value(leaf_tp: Any, raw: Any, key: str) -> Any:
    """A flag's text as the config value (the config layer then checks its type)."""
    kind, _ = _kind(leaf_tp)
    if kind == "bool" or kind == "choice" or raw is None:
        return raw
    if kind == "text":  # paths stay text ("on", "1e3"); null/none clear an optional one
        optional = type(None) in typing.get_args(leaf_tp)
        return None if optional and str(raw).lower() in ("null", "none") else raw
    if kind == "list":
        return [part.strip() for item in raw for part in str(item).split(",") if part.strip()]
    if kind == "dict":
        out = {}
        for item in raw:
            name, sep, val = str(item).partition("=")
            if not sep or not name or not val:
                raise argparse.ArgumentTypeError(f"{_flag(key)} {item!r}: expected NAME=VALUE")
            out[name] = val
        return out
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw


def config_from_args(cmd: Command, args: argparse.Namespace) -> Any:
    """Defaults <- ``--config`` (its ``section`` when present) <- flags <- ``--set``."""
    from slamlm.config import build_config, load_yaml

    cls = load(cmd.config)
    types_ = {leaf.key: leaf.tp for leaf in leaves(cls)}
    base: dict[str, Any] = {}
    for name, raw in vars(args).items():
        if raw is SKIP or not name.startswith(("_cfg_", "_pos_")):
            continue
        key = name[5:]
        base = _set(base, key, _value(types_[key], raw, key))
    file_cfg: dict[str, Any] = {}
    if args.config:
        file_cfg = load_yaml(args.config)
        if cmd.section and isinstance(file_cfg.get(cmd.section), dict):
            file_cfg = file_cfg[cmd.section]
    overrides = [o[len(cmd.section) + 1:] if cmd.section and o.startswith(cmd.section + ".")
                 else o for o in args.overrides]
    return build_config(cls, base=merge_dicts(file_cfg, base), overrides=overrides)


def _set(base: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    """A copy of ``base`` with dotted ``key`` set to ``value``."""
    node: dict[str, Any] = {}
    cur = node
    parts = key.split(".")
    for part in parts[:-1]:
        cur = cur.setdefault(part, {})
    cur[parts[-1]] = value
    return merge_dicts(base, node)


def run_command(cmd: Command, args: argparse.Namespace) -> int:
    """Build the config from the parsed flags, run the stage, show its result."""
    cfg = config_from_args(cmd, args)
    result = load(cmd.run)(cfg)
    if cmd.show:
        load(cmd.show)(result, cfg)
    elif result is not None:
        print(result)
    return 0
