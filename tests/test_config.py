from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from slamlm.config import ConfigError, build_config, dump_config, parse_overrides, to_dict


@dataclass(frozen=True)
class Opt:
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.95)
    fused: bool = True


@dataclass(frozen=True)
class Run:
    name: str = "run"
    steps: int = 10
    out: Path = Path("runs/x")
    tags: tuple[str, ...] = ()
    budget: str | None = None
    opt: Opt = field(default_factory=Opt)


def test_overrides_parse_yaml_scalars():
    assert parse_overrides(["a.b=3", "c=x", "d=[1, 2]", "e=null"]) == {
        "a": {"b": 3}, "c": "x", "d": [1, 2], "e": None}


def test_build_from_file_and_overrides(tmp_path):
    f = tmp_path / "r.yaml"
    f.write_text("name: paper\nopt:\n  lr: 5e-4\n")
    cfg = build_config(Run, config_file=f, overrides=["steps=20", "opt.betas=[0.8, 0.9]"])
    assert cfg == Run(name="paper", steps=20, opt=Opt(lr=5e-4, betas=(0.8, 0.9)))
    assert isinstance(cfg.out, Path)


def test_unknown_key_is_named():
    with pytest.raises(ConfigError, match=r"unknown config key\(s\) opt.lrr .*known keys: betas, fused, lr"):
        build_config(Run, overrides=["opt.lrr=1"])


@pytest.mark.parametrize("override,msg", [
    ("steps=ten", "steps: expected an integer, got 'ten'"),
    ("opt.fused=3", "opt.fused: expected true/false"),
    ("opt.betas=[1]", "opt.betas: expected 2 items"),
    ("opt=5", "opt: expected a mapping"),
])
def test_wrong_types_are_named(override, msg):
    with pytest.raises(ConfigError, match=msg):
        build_config(Run, overrides=[override])


def test_bad_override_syntax():
    with pytest.raises(ConfigError, match="key.path=value"):
        parse_overrides(["steps"])


def test_dump_roundtrip(tmp_path):
    cfg = build_config(Run, overrides=["tags=[a, b]", "budget=24h"])
    p = dump_config(cfg, tmp_path / "config.yaml")
    data = yaml.safe_load(p.read_text())
    assert data["tags"] == ["a", "b"] and data["out"] == "runs/x"
    assert build_config(Run, config_file=p) == cfg
    assert to_dict(cfg)["opt"]["lr"] == 1e-3


def test_config_frozen():
    cfg = Run()
    import dataclasses

    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.steps = 3  # type: ignore[misc]


def test_missing_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        build_config(Run, config_file=tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        build_config(Run, config_file=bad)
