"""Corrupt training state: a damaged newest checkpoint is skipped for the previous complete
one (and the resumed run still matches an uninterrupted one); a token shard whose size
disagrees with its index is an error naming the file, never garbage training."""

from __future__ import annotations

import dataclasses
import json
import logging
from functools import partial
from pathlib import Path

import pytest
import torch
from reliability_helpers import pretrain_cfg, synthetic_tokens, tree_hashes

from slamlm.data.shards import TokenShard
from slamlm.train import run_pretrain
from slamlm.train.checkpoint import find_latest, read_state


@pytest.fixture(scope="module")
def tokens(tmp_path_factory) -> Path:
    return synthetic_tokens(tmp_path_factory.mktemp("tok"), 60, seed=2)


cfg = partial(pretrain_cfg, max_steps=6, eval_every=0, ckpt_every=2, keep_last=5)


@pytest.fixture(scope="module")
def reference(tokens, tmp_path_factory) -> Path:
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return run_pretrain(cfg(tokens, tmp_path_factory.mktemp("ref") / "run"))
    finally:
        torch.set_num_threads(n)


def _halve(p: Path) -> None:
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])


CORRUPTIONS = {
    "model_cut_in_half": lambda f: _halve(f / "model.safetensors"),
    "state_json_missing": lambda f: (f / "state.json").unlink(),
    "state_json_garbled": lambda f: (f / "state.json").write_text('{"step": 4, "tok'),
    "optimizer_garbage": lambda f: (f / "optimizer.pt").write_bytes(b"\x00garbage" * 100),
    "optimizer_cut_in_half": lambda f: _halve(f / "optimizer.pt"),
    "config_json_garbled": lambda f: (f / "config.json").write_text("{not json"),
}


@pytest.mark.parametrize("kind", sorted(CORRUPTIONS))
def test_damaged_newest_checkpoint_is_skipped(kind, tokens, reference, tmp_path, caplog):
    from safetensors.torch import load_file

    run = tmp_path / "run"
    run_pretrain(cfg(tokens, run, stop_at_step=4))
    ckpt = run / "ckpt"
    CORRUPTIONS[kind](ckpt / "step_00000004")
    good = tree_hashes(ckpt / "step_00000002")
    with caplog.at_level(logging.WARNING):
        assert find_latest(ckpt).name == "step_00000002"
    assert "skipping checkpoint" in caplog.text and "step_00000004" in caplog.text
    assert tree_hashes(ckpt / "step_00000002") == good  # the good one is untouched
    last = run_pretrain(cfg(tokens, run))  # resumes from step 2, redoes 3..6
    assert last.name == "step_00000006" and read_state(last)["step"] == 6
    wa, wb = load_file(str(reference / "model.safetensors")), load_file(str(last / "model.safetensors"))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert read_state(last)["data"] == read_state(reference)["data"]


def test_explicit_resume_from_damaged_folder_names_it(tokens, tmp_path):
    run = tmp_path / "run"
    run_pretrain(cfg(tokens, run, stop_at_step=2))
    folder = run / "ckpt" / "step_00000002"
    _halve(folder / "model.safetensors")
    with pytest.raises(FileNotFoundError, match=r"step_00000002: cannot resume from it \(unreadable"):
        run_pretrain(dataclasses.replace(cfg(tokens, run), resume=str(folder)))


@pytest.mark.parametrize("split,change", [("train", -10), ("train", +6), ("val", -2)])
def test_token_shard_size_mismatch_is_an_error(split, change, tokens, tmp_path):
    import shutil

    bad = tmp_path / "tokens"
    shutil.copytree(tokens, bad)
    f = bad / f"{split}.bin"
    data = f.read_bytes()
    f.write_bytes(data[: len(data) + 2 * change] if change < 0 else data + b"\x01\x00" * change)
    n_index = json.loads((bad / "index.json").read_text())["splits"][split]["n_tokens"]
    with pytest.raises(ValueError, match=rf"{split}.bin has {n_index + change} tokens but "
                                         rf"index.json says {n_index}: re-run slam pack"):
        TokenShard.open(bad, split)
    with pytest.raises(ValueError, match=rf"{split}.bin"):
        run_pretrain(cfg(bad, tmp_path / "run"))
    assert not (tmp_path / "run" / "ckpt").exists()
