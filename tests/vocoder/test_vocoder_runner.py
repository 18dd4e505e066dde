"""slam vocoder train: a few steps on a tiny real corpus -> a checkpoint our loader vocodes
with; the loss falls on a fixed batch; 2 steps + resume 2 = 4 straight steps exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from slamlm.config import build_config
from slamlm.generate.vocoder import load_vocoder
from slamlm.train.distributed import DistInfo
from slamlm.vocoder.data import crop_batch, load_pairs
from slamlm.vocoder.runner import VocoderConfig, VocoderObjective, run_vocoder

TINY = {"istft": {"channels": 32, "layers": 2}, "hifigan": {"channels": 32}}


def _cfg(units, out, arch="istft", steps=3, **kw):
    sched = {"max_steps": steps, "log_every": 1, "eval_every": 0, "ckpt_every": 0,
             "warmup_steps": 1, **kw.pop("schedule", {})}
    return build_config(VocoderConfig, base={
        "units": str(units), "out": str(out), "arch": arch, "device": "cpu", "heldout": 1,
        "segment": 0.4, "train": {"batch_size": 2, "precision": "fp32", "eval_windows": 1},
        "schedule": sched, **TINY[arch], **kw})


@pytest.mark.parametrize("arch", ["istft", "hifigan"])
def test_train_writes_a_checkpoint_our_loader_vocodes_with(tiny_units, tmp_path, arch):
    g = run_vocoder(_cfg(tiny_units, tmp_path / "run", arch))
    assert g.name == "g_00000003" and (g.parent / "config.json").is_file()
    ident = load_pairs(tiny_units, heldout=1).identity
    voc = load_vocoder(f"hifigan:{tmp_path / 'run'}", ident)
    units, durs = np.array([3, 7, 1, 15]), np.array([2, 1, 4, 1])
    wav = voc(units, durs)
    assert wav.shape == (8 * 640,) and wav.dtype == np.float32 and np.isfinite(wav).all()
    assert 0 < np.abs(wav).max() <= 1.0
    pred = voc(units)  # no durations: the trained duration predictor decides (>= 1 frame each)
    assert len(pred) % 640 == 0 and len(pred) >= 4 * 640
    rows = [r for r in (tmp_path / "run/metrics.jsonl").read_text().splitlines() if '"mel_l1"' in r]
    assert len(rows) == 3


def test_loss_falls_on_a_fixed_batch(tiny_units, tmp_path):
    torch.manual_seed(0)
    cfg = _cfg(tiny_units, tmp_path / "fixed")
    obj = VocoderObjective(cfg)
    model, _ = obj.build(DistInfo(0, 1, 0, torch.device("cpu")), None)
    batch = crop_batch(obj.data.train, 0, 2, obj.frames, obj.data.hop, seed=0)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(25):
        loss, _ = obj.loss(model, batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5]), losses


def test_resume_is_exact_with_the_discriminator(tiny_units, tmp_path):
    kw = {"gan": True, "gan_channels": 4}
    run_vocoder(_cfg(tiny_units, tmp_path / "straight", "hifigan", steps=4, **kw))
    run_vocoder(_cfg(tiny_units, tmp_path / "split", "hifigan", steps=4,
                     schedule={"stop_at_step": 2}, **kw))
    assert (tmp_path / "split/ckpt/step_00000002").is_dir()
    run_vocoder(_cfg(tiny_units, tmp_path / "split", "hifigan", steps=4, **kw))
    a = load_file(str(tmp_path / "straight/ckpt/step_00000004/model.safetensors"))
    b = load_file(str(tmp_path / "split/ckpt/step_00000004/model.safetensors"))
    assert a.keys() == b.keys() and any(k.startswith("d_opt.m__") for k in a)
    assert float(a["d_opt.count"]) == 4.0  # the discriminator stepped every step
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6, msg=k)
