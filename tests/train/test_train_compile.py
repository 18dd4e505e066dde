"""The compiled training step: same numbers as eager, one graph, no recompiles across batches.

CPU only (the sdpa document-mask path); the flex BlockMask path is checked against sdpa in
eager mode (flex has no backward on CPU). GPU speed is measured by bench/train_throughput.py.
"""

from __future__ import annotations

import copy
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch._dynamo as dynamo
import torch.nn.functional as F
from torch._dynamo.utils import counters

from slamlm.data.shards import TokenShard
from slamlm.data.windows import IGNORE, MicroBatch, PackedWindows
from slamlm.model import SpeechLM, named_shape
from slamlm.train.distributed import DistInfo, wrap_model
from slamlm.train.optim import build_optimizer, step_unless_nonfinite
from slamlm.train.pretrain import _full_rows, _loss, evaluate
from slamlm.vocab import UnitVocab

CPU = torch.device("cpu")
INFO = DistInfo(0, 1, 0, CPU)
V, B, T = 61, 2, 48


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    dynamo.reset()
    counters.clear()
    yield
    dynamo.reset()
    counters.clear()


def _model(seed: int = 0) -> SpeechLM:
    torch.manual_seed(seed)
    m = SpeechLM(named_shape("tiny", vocab_size=V, max_seq_len=T))
    m.set_attn_impl("sdpa")
    return m.train()


def _batch(rng: np.random.Generator, n_docs: list[int]) -> MicroBatch:
    """A micro-batch whose row r holds n_docs[r] documents at random cut points."""
    docs = np.zeros((len(n_docs), T), dtype=np.int64)
    for r, n in enumerate(n_docs):
        for c in np.sort(rng.choice(np.arange(1, T), n - 1, replace=False)):
            docs[r, c:] += 1
    x = rng.integers(3, V, (len(n_docs), T))
    starts = np.concatenate([docs[:, 1:] != docs[:, :-1], np.ones((len(n_docs), 1), bool)], 1)
    y = np.where(starts, IGNORE, np.roll(x, -1, axis=1))  # no target across a document start
    return MicroBatch(x, y, docs)


LAYOUTS = [[1, 1], [3, 2], [7, 1], [2, 12], [T, 5]]  # [T, .]: every token its own document


def test_loss_in_forward_is_the_same_ops_as_outside():
    m, mb = _model(), _batch(np.random.default_rng(0), [3, 2])
    x, y, d = (torch.from_numpy(a) for a in (mb.input_ids, mb.targets, mb.doc_ids))
    ref = F.cross_entropy(m(x, doc_ids=d).flatten(0, 1), y.flatten(), ignore_index=IGNORE,
                          reduction="sum")
    assert torch.equal(_loss(m, mb, CPU), ref)  # bitwise: numerics unchanged
    assert m(x, doc_ids=d, targets=y).shape == ()


@pytest.mark.slow  # inductor C++ compile: ~50 s with a cold cache, ~6 s warm
def test_compiled_step_matches_eager_without_recompiles():
    eager = _model()
    compiled_model = copy.deepcopy(eager)
    compiled = wrap_model(compiled_model, INFO, "ddp", compile_model=True)  # inductor, as run_pretrain()
    rng = np.random.default_rng(1)
    with dynamo.config.patch(error_on_recompile=True):
        for layout in LAYOUTS[:4]:
            mb = _batch(rng, layout)
            n_valid = int((mb.targets != IGNORE).sum())
            want = (_loss(eager, mb, CPU) * 1.0 / n_valid)
            got = (_loss(compiled, mb, CPU) * 1.0 / n_valid)
            want.backward()
            got.backward()
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
            for (name, pe), pc in zip(eager.named_parameters(), compiled_model.parameters()):
                torch.testing.assert_close(pc.grad, pe.grad, rtol=1e-4, atol=1e-6, msg=name)
            eager.zero_grad()
            compiled_model.zero_grad()
    assert counters["stats"]["unique_graphs"] == 1
    assert not counters["graph_break"], dict(counters["graph_break"])


def test_forward_has_no_graph_breaks_with_doc_ids():
    m, mb = _model(), _batch(np.random.default_rng(2), [3, 2])
    x, y, d = (torch.from_numpy(a) for a in (mb.input_ids, mb.targets, mb.doc_ids))
    for kwargs in ({"doc_ids": d}, {"doc_ids": d, "targets": y}):
        ex = dynamo.explain(m)(x, **kwargs)
        assert (ex.graph_count, ex.graph_break_count) == (1, 0), ex.break_reasons
        dynamo.reset()


def test_full_optimizer_steps_over_new_doc_layouts_do_not_recompile():
    """The whole run_pretrain() step (loss over 2 micro-batches, clip, fused AdamW with the device-side
    NaN skip) for 5 steps with different documents and a different ``scale`` every step.
    Recompiles and graph breaks are decided by dynamo, before the backend: aot_eager keeps
    this test fast (inductor is covered above)."""
    model = _model()
    compiled = torch.compile(model, backend="aot_eager")
    opt = build_optimizer(model, 1e-3, 0.1, (0.9, 0.95), 1e-8)
    rng = np.random.default_rng(3)
    with dynamo.config.patch(error_on_recompile=True):
        for layout in LAYOUTS:
            micros = [_batch(rng, layout), _batch(rng, layout[::-1])]
            n_valid = sum(int((mb.targets != IGNORE).sum()) for mb in micros)
            for mb in micros:
                (_loss(compiled, mb, CPU) * 1.0 / n_valid).backward()
            norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            assert step_unless_nonfinite(opt, norm).item() == 0.0
    assert counters["stats"]["unique_graphs"] == 1
    assert counters["frames"]["ok"] == 1
    assert not counters["graph_break"]


def _shard(folder: Path, n_tokens: int, seed: int) -> TokenShard:
    """An in-memory validation shard of random documents (3..40 tokens)."""
    rng = np.random.default_rng(seed)
    lens = rng.integers(3, 40, n_tokens // 3)
    lens = lens[: np.searchsorted(np.cumsum(lens), n_tokens) + 1]
    offsets = np.concatenate([[0], np.cumsum(lens)[:-1]])
    toks = rng.integers(3, V, int(lens.sum())).astype(np.uint16)
    return TokenShard(folder, "val", toks, offsets, lens, UnitVocab(V - 3),
                      {"splits": {"val": {}}})


def test_validation_short_last_batch_does_not_recompile(tmp_path):
    """7 windows at micro-batch 3 -> batches of 3, 3, 1: the last is padded to 3 rows of
    ignored targets, so the compiled eval graph is reused; the loss equals eager's."""
    data = PackedWindows(_shard(tmp_path, 7 * T + 1, seed=4), T)
    assert len(data) == 7
    t = SimpleNamespace(micro_batch=3, eval_windows=0)
    model = _model()
    want = evaluate(model, data, t.micro_batch, t.eval_windows, INFO)["val_loss"]
    compiled = torch.compile(model, backend="aot_eager")
    with dynamo.config.patch(error_on_recompile=True):
        got = evaluate(compiled, data, t.micro_batch, t.eval_windows, INFO)["val_loss"]
    assert got == pytest.approx(want, rel=1e-6)
    assert counters["stats"]["unique_graphs"] == 1


def test_full_rows_pads_with_ignored_targets():
    mb = _batch(np.random.default_rng(5), [2])
    out = _full_rows(mb, 3)
    assert out.input_ids.shape == out.targets.shape == out.doc_ids.shape == (3, T)
    assert (out.targets[1:] == IGNORE).all() and np.array_equal(out.targets[:1], mb.targets)
    assert _full_rows(out, 3) is out


def test_flex_block_mask_matches_sdpa_doc_mask():
    """flex_attention's forward runs on CPU (eager); its BlockMask from doc_ids must give the
    same logits as the SDPA boolean mask. (No CPU backward: training there uses sdpa.)"""
    m = _model().eval()
    mb = _batch(np.random.default_rng(6), [4, 1])
    x, d = torch.from_numpy(mb.input_ids), torch.from_numpy(mb.doc_ids)
    with torch.no_grad():
        ref = m(x, doc_ids=d)
        m.set_attn_impl("flex")
        try:
            out = m(x, doc_ids=d)
        except (NotImplementedError, RuntimeError) as e:  # pragma: no cover - torch-dependent
            pytest.skip(f"flex_attention forward does not run on CPU here: {e}")
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(ref, m.set_attn_impl("sdpa") or m(x))  # the mask matters


def test_flex_path_traces_to_one_graph_without_recompiles(monkeypatch):
    """The GPU flex path (BlockMask built inside the compiled forward, flex_attention through
    its own torch.compile wrapper) traced on CPU: one graph, no graph break, and new document
    layouts reuse it. backend="eager" runs the traced graph (flex's dense CPU reference)."""
    from slamlm.model import masks

    gpu_branch = masks._flex
    monkeypatch.setattr(masks, "_flex", lambda on_cuda: gpu_branch(True))
    monkeypatch.setattr(masks, "_compiled_flex", None)
    m = _model().eval()
    compiled = torch.compile(m, backend="eager")
    rng = np.random.default_rng(7)
    with torch.no_grad(), dynamo.config.patch(error_on_recompile=True):
        for layout in LAYOUTS[1:4]:
            mb = _batch(rng, layout)
            x, d = torch.from_numpy(mb.input_ids).contiguous(), torch.from_numpy(mb.doc_ids)
            m.set_attn_impl("flex")
            out = compiled(x, doc_ids=d)
            m.set_attn_impl("sdpa")
            torch.testing.assert_close(out, m(x, doc_ids=d), rtol=1e-4, atol=1e-5)
            m.set_attn_impl("flex")
    assert counters["stats"]["unique_graphs"] == 1
    assert not counters["graph_break"]
