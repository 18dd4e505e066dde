"""Frozen dataclass configs: YAML load, ``--set a.b=c`` overrides with type checks, dump.

Every stage has a frozen dataclass config. A config is built from (defaults) <- YAML file <-
``--set`` overrides, checked against the dataclass field types, and the resolved result is
written next to the stage's outputs as ``config.yaml``.

Example:
    >>> parse_overrides(["train.lr=5e-4", "train.budget=24h"])
    {'train': {'lr': '5e-4', 'budget': '24h'}}
    >>> # build_config(PretrainConfig, config_file="configs/slam.yaml", overrides=["train.lr=5e-4"])
"""

from __future__ import annotations

import copy
import dataclasses
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A config value or key is wrong; the message names the key and what was expected."""


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """Turn ``["a.b=3", "c=x"]`` into a nested dict ``{"a": {"b": 3}, "c": "x"}``.

    Values are parsed as YAML scalars/lists (``3`` -> int, ``[1,2]`` -> list, ``null`` -> None).
    """
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key.path=value")
        key, raw = item.split("=", 1)
        key = key.strip()
        if not key:
            raise ConfigError(f"override {item!r} has an empty key")
        try:
            value = yaml.safe_load(raw) if raw.strip() != "" else ""
        except yaml.YAMLError:
            value = raw
        node = out
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r} conflicts with an earlier override")
        node[parts[-1]] = value
    return out


def merge_dicts(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Recursively merge ``update`` into a copy of ``base``."""
    out = dict(base)
    for k, v in update.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = merge_dicts(out[k], v)
        else:
            out[k] = v
    return out


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check/convert ``value`` to type ``tp``; raise ConfigError naming ``where``."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, where)
            except ConfigError:
                pass
        raise ConfigError(f"{where}: {value!r} does not fit {_type_name(tp)}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{where}: {value!r} is not one of {list(args)}")
        return value
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping for {tp.__name__}, got {value!r}")
        return from_dict(tp, value, prefix=where)
    if origin in (tuple, list, Sequence) or tp in (tuple, list):
        if isinstance(value, str) or not isinstance(value, Sequence):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise ConfigError(f"{where}: expected {len(args)} items, got {len(value)}")
            return tuple(_coerce(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        item_tp = args[0] if args else Any
        items = [_coerce(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if (origin is tuple or tp is tuple) else items
    if origin in (dict, Mapping) or tp is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if tp in (bool, int, float, str, Path):
        return _coerce_scalar(value, tp, where)
    if isinstance(tp, type) and not isinstance(value, tp):
        raise ConfigError(f"{where}: expected {_type_name(tp)}, got {value!r}")
    return value


def _coerce_scalar(value: Any, tp: type, where: str) -> Any:
    """bool / int / float / str / Path with YAML's quirks (``5e-4`` read as a string)."""
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true/false, got {value!r}")
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            if isinstance(value, str):
                try:
                    return float(value)  # YAML reads "1e-3" as a string
                except ValueError:
                    pass
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return str(value)
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    if tp is Path:
        if not isinstance(value, (str, Path)):
            raise ConfigError(f"{where}: expected a path, got {value!r}")
        return Path(value)
    return value


def apply_aliases(data: Mapping[str, Any], aliases: Mapping[str, str], prefix: str = ""
                  ) -> dict[str, Any]:
    """Move values given under an old dotted name to the new one (``train.lr`` -> ``optim.lr``).

    A class declares ``ALIASES: ClassVar[dict[str, str]]``; giving both names with different
    values is an error.

    >>> apply_aliases({"train": {"lr": 1}}, {"train.lr": "optim.lr"})
    {'train': {}, 'optim': {'lr': 1}}
    """
    out = copy.deepcopy(dict(data))
    for old, new in aliases.items():
        *head, leaf = old.split(".")
        node: Any = out
        for h in head:
            node = node.get(h) if isinstance(node, Mapping) else None
        if not isinstance(node, dict) or leaf not in node:
            continue
        value = node.pop(leaf)
        *new_head, new_leaf = new.split(".")
        dest = out
        for h in new_head:
            nxt = dest.setdefault(h, {})
            if not isinstance(nxt, dict):
                raise ConfigError(f"{prefix}{h}: expected a mapping, got {nxt!r}")
            dest = nxt
        if new_leaf in dest and dest[new_leaf] != value:
            raise ConfigError(f"{prefix}{old} (an old name of {prefix}{new}) = {value!r} "
                              f"conflicts with {prefix}{new} = {dest[new_leaf]!r}: give one")
        dest[new_leaf] = value
    return out


def _old_names(msg: str, given: Mapping[str, Any], aliases: Mapping[str, str], prefix: str
               ) -> str:
    """Rewrite ``optim.lr`` back to ``train.lr`` in an error when the user wrote the old name."""
    head = f"{prefix}." if prefix else ""
    for old, new in aliases.items():
        node: Any = given
        for part in old.split("."):
            node = node.get(part, _MISSING) if isinstance(node, Mapping) else _MISSING
        if node is not _MISSING and msg.startswith(head + new):
            return head + old + msg[len(head + new):]
    return msg


_MISSING = object()


def from_dict(cls: type[T], data: Mapping[str, Any], prefix: str = "",
              aliased: bool = False) -> T:
    """Build dataclass ``cls`` from a (nested) mapping, rejecting unknown keys and bad types
    (old key names in ``cls.ALIASES`` are moved first unless ``aliased``)."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{prefix or cls.__name__}: expected a mapping, got {data!r}")
    aliases = getattr(cls, "ALIASES", None) or {}
    if aliases and not aliased:
        moved = apply_aliases(data, aliases, f"{prefix}." if prefix else "")
        try:
            return from_dict(cls, moved, prefix, aliased=True)
        except ConfigError as e:  # name the key as the user wrote it
            raise ConfigError(_old_names(str(e), data, aliases, prefix)) from None
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    odd = [k for k in data if not isinstance(k, str)]
    if odd:  # YAML allows `? ` (null), numbers and lists as keys
        raise ConfigError(f"{prefix or cls.__name__}: config keys must be names, got "
                          f"{odd[0]!r} ({type(odd[0]).__name__})")
    unknown = sorted(set(data) - set(fields))
    if unknown:
        where = f"{prefix}." if prefix else ""
        raise ConfigError(
            f"unknown config key(s) {', '.join(where + k for k in unknown)} for {cls.__name__}; "
            f"known keys: {', '.join(sorted(fields))}"
        )
    kwargs = {}
    for name, value in data.items():
        where = f"{prefix}.{name}" if prefix else name
        factory = fields[name].default_factory
        if isinstance(value, Mapping) and factory is not dataclasses.MISSING:
            default = factory()  # a section's own defaults (DPO's train differs from
            if dataclasses.is_dataclass(default):  # TrainConfig's) are the base it overrides
                value = merge_dicts(to_dict(default), value)
        kwargs[name] = _coerce(value, hints[name], where)
    try:
        return cls(**kwargs)
    except TypeError as e:  # a required field is missing
        raise ConfigError(f"{prefix or cls.__name__}: {e}") from e


def to_dict(cfg: Any) -> Any:
    """Dataclass (nested) -> plain YAML-able dict."""
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        return {f.name: to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, (list, tuple)):
        return [to_dict(v) for v in cfg]
    if isinstance(cfg, Mapping):
        return {k: to_dict(v) for k, v in cfg.items()}
    if isinstance(cfg, Path):
        return str(cfg)
    return cfg


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping with a clear error for missing files and syntax errors."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not a UTF-8 text file (byte {e.start}: {e.reason})") from e
    except (yaml.YAMLError, ValueError, RecursionError) as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping, got {type(data).__name__}")
    return data


def build_config(
    cls: type[T],
    base: Mapping[str, Any] | None = None,
    overrides: Sequence[str] = (),
    config_file: str | Path | None = None,
) -> T:
    """Defaults <- ``config_file`` <- ``base`` dict <- ``--set`` overrides, type checked."""
    data: dict[str, Any] = {}
    if config_file is not None:
        data = load_yaml(config_file)
    if base:
        data = merge_dicts(data, base)
    if overrides:
        data = merge_dicts(data, parse_overrides(overrides))
    try:
        return from_dict(cls, data)
    except ConfigError as e:
        if config_file is None or str(config_file) in str(e):
            raise
        given = " (with the --set overrides)" if overrides else ""
        raise ConfigError(f"{config_file}{given}: {e}") from e


def replace_nested(cfg: T, **changes: Any) -> T:
    """``dataclasses.replace`` that accepts dotted keys: ``replace_nested(c, **{"opt.lr": 1})``."""
    nested: dict[str, dict[str, Any]] = {}
    flat: dict[str, Any] = {}
    for k, v in changes.items():
        if "." in k:
            head, rest = k.split(".", 1)
            nested.setdefault(head, {})[rest] = v
        else:
            flat[k] = v
    for head, sub in nested.items():
        flat[head] = replace_nested(getattr(cfg, head), **sub)
    return dataclasses.replace(cfg, **flat)  # type: ignore[type-var]


def dump_config(cfg: Any, path: str | Path) -> Path:
    """Write the resolved config as YAML (atomically) and return its path."""
    from slamlm.io import atomic_write_text

    path = Path(path)
    atomic_write_text(path, yaml.safe_dump(to_dict(cfg), sort_keys=False))
    return path
