"""PretrainObjective picks its training rows from ``data.packing`` (ffd when the config has
no such field) and always validates on whole documents."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from slamlm.config import build_config
from slamlm.data import PackConfig, PackedDocuments, PackedWindows, run_pack
from slamlm.data.synthetic import write_synthetic_units
from slamlm.data.windows import IGNORE
from slamlm.train import PretrainConfig
from slamlm.train.distributed import DistInfo
from slamlm.train.pretrain import PretrainObjective

INFO = DistInfo(rank=0, world=1, local_rank=0, device=torch.device("cpu"))


@pytest.fixture(scope="module")
def cfg(tmp_path_factory) -> PretrainConfig:
    d = tmp_path_factory.mktemp("tok")
    write_synthetic_units(d / "units", 60, k=20, mean_len=12, seed=3)
    tokens = run_pack(PackConfig(units=d / "units", out=d / "tokens", n_units=20, context=32,
                                 val_fraction=0.2))
    return build_config(PretrainConfig, base={
        "out": str(d / "run"), "device": "cpu", "data": {"tokens": str(tokens), "context": 32},
        "train": {"batch_size": 4, "micro_batch": 2, "max_steps": 2, "budget": None}})


def _with_packing(cfg: PretrainConfig, packing: str | None) -> PretrainConfig:
    """``packing`` set, or the default (None)."""
    return cfg if packing is None else replace(cfg, data=replace(cfg.data, packing=packing))


@pytest.mark.parametrize("packing,kind", [(None, "ffd"), ("ffd", "ffd"),
                                          ("doc_per_row", "doc_per_row"), ("windows", None)])
def test_objective_selects_the_packing(cfg, packing, kind):
    obj = PretrainObjective(_with_packing(cfg, packing))
    obj.build(INFO, None)
    rows = obj.sampler.data
    if kind is None:
        assert isinstance(rows, PackedWindows)
    else:
        assert isinstance(rows, PackedDocuments) and rows.packing == kind
    assert isinstance(obj.val_data, PackedDocuments) and obj.val_data.packing == "ffd"
    batch = obj.next_batch()
    assert len(batch.micros) == 2 and batch.tokens == 4 * 32
    assert batch.n_items == sum(int((m.targets != IGNORE).sum()) for m in batch.micros)
    assert np.isfinite(obj.evaluate(_model(obj))["val_loss"])


def _model(obj: PretrainObjective):
    from slamlm.model import SpeechLM, named_shape

    torch.manual_seed(0)
    return SpeechLM(named_shape("tiny", vocab_size=obj.sampler.data.shard.vocab.size))
