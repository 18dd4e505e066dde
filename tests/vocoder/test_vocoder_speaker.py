"""Speaker-conditioned vocoders: both generators take a (B, 256) d-vector; slam vocoder train
--speaker-embedding resemblyzer caches one embedding per utterance, trains, resumes exactly
and exports a checkpoint that needs a reference voice."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from slamlm.config import build_config
from slamlm.generate.vocoder import load_vocoder
from slamlm.units.speaker import INSTALL
from slamlm.vocoder.data import crop_batch, load_pairs
from slamlm.vocoder.model import VocoderModel, VocoderSpec, generator_config
from slamlm.vocoder.runner import VocoderConfig, run_vocoder

needs_wheel = pytest.mark.skipif(
    importlib.util.find_spec("resemblyzer") is None,
    reason=f"Resemblyzer wheel (its pretrained.pt) not installed: {INSTALL}")

EMBEDDER = {"name": "resemblyzer", "id": "resemblyzer-0.1.4", "dim": 256}


@pytest.mark.parametrize("arch", ["istft", "hifigan"])
def test_both_generators_take_a_speaker_embedding(arch):
    torch.manual_seed(0)
    cfg = generator_config(arch, n_units=10, hop=640, channels=32, layers=2, embedder=EMBEDDER)
    m = VocoderModel(VocoderSpec(arch, cfg))
    frames, units = torch.randint(0, 10, (2, 5)), torch.randint(0, 10, (2, 3))
    spkr = torch.nn.functional.normalize(torch.rand(2, 256), dim=1)
    wav, logdur = m(frames, units, spkr)
    assert wav.shape == (2, 5 * 640) and logdur.shape == (2, 3)  # durations ignore the voice
    assert tuple(m.generator.spkr.weight.shape) == (cfg["embedding_dim"], 256)
    one = m.generator(frames[:1], spkr=spkr[:1])
    torch.testing.assert_close(one, wav[:1], rtol=1e-4, atol=1e-5)  # per-utterance voice
    with pytest.raises(ValueError, match="speaker-conditioned.*--speaker-wav"):
        m.generator(frames)
    plain = VocoderModel(VocoderSpec(arch, generator_config(arch, 10, 640, 32, 2)))
    with pytest.raises(ValueError, match="not speaker-conditioned"):
        plain.generator(frames, spkr=spkr)


def _cfg(units, out, steps=2, **kw):
    sched = {"max_steps": steps, "log_every": 1, "eval_every": 1, "ckpt_every": 0,
             "warmup_steps": 1, **kw.pop("schedule", {})}
    return build_config(VocoderConfig, base={
        "units": str(units), "out": str(out), "arch": "istft", "channels": 32, "layers": 2,
        "device": "cpu", "heldout": 1, "segment": 0.4, "speaker_embedding": "resemblyzer",
        "train": {"batch_size": 2, "precision": "fp32", "eval_windows": 1},
        "schedule": sched, **kw})


@needs_wheel
def test_train_caches_embeddings_and_resumes_exactly(tiny_units, tmp_path):
    run_vocoder(_cfg(tiny_units, tmp_path / "straight", steps=2))
    with np.load(tmp_path / "straight/speakers.npz") as z:
        assert len(z["ids"]) == 6 and z["emb"].shape == (6, 256) and str(z["encoder"]) == EMBEDDER["id"]
        np.testing.assert_allclose(np.linalg.norm(z["emb"], axis=1), 1, atol=1e-5)
    run_vocoder(_cfg(tiny_units, tmp_path / "split", steps=2, schedule={"stop_at_step": 1}))
    run_vocoder(_cfg(tiny_units, tmp_path / "split", steps=2))
    a = load_file(str(tmp_path / "straight/ckpt/step_00000002/model.safetensors"))
    b = load_file(str(tmp_path / "split/ckpt/step_00000002/model.safetensors"))
    assert "generator.spkr.weight" in a and a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6, msg=k)
    rows = (tmp_path / "straight/metrics.jsonl").read_text()
    assert '"val_mel_l1"' in rows  # held-out evaluation feeds the held-out voice too

    # the exported generator needs a voice; with one it vocodes
    ident = load_pairs(tiny_units, heldout=1).identity
    with pytest.raises(ValueError, match="--speaker-wav"):
        load_vocoder(f"hifigan:{tmp_path / 'straight'}", ident)
    data = load_pairs(tiny_units, heldout=1)
    wav_path = tmp_path / "ref.wav"
    from slamlm.audio import save_audio

    save_audio(wav_path, data.train[0].wav)
    voc = load_vocoder(f"hifigan:{tmp_path / 'straight'}", ident, speaker_wav=str(wav_path))
    with np.load(tmp_path / "straight/speakers.npz") as z:
        cached = dict(zip(z["ids"], z["emb"]))
    np.testing.assert_allclose(voc.speaker, cached[data.train[0].id], atol=1e-4)
    out = voc(np.array([3, 7, 1]), np.array([2, 1, 3]))
    assert out.shape == (6 * 640,) and np.isfinite(out).all()


def test_crops_carry_their_utterance_embedding(tiny_units):
    data = load_pairs(tiny_units, heldout=1)
    for i, p in enumerate(data.train):  # a marker embedding per utterance
        p.spkr = np.full(256, i, dtype=np.float32)
    b = crop_batch(data.train, step=0, batch=6, frames=10, hop=data.hop, seed=0)
    assert b.spkr.shape == (6, 256)
    for wav, spkr in zip(b.wav.numpy(), b.spkr.numpy()):
        src = data.train[int(spkr[0])].wav
        starts = range(0, len(src) - len(wav) + 1, data.hop)
        assert any(np.array_equal(wav, src[s:s + len(wav)]) for s in starts)
    mb = b.map(lambda x: x[:2])
    assert mb.spkr.shape == (2, 256) and mb.frames.shape[0] == 2


@needs_wheel
def test_embeddings_are_computed_once(tiny_units, tmp_path, monkeypatch):
    from slamlm.units.speaker import SpeakerEncoder
    from slamlm.vocoder.speakers import attach_speakers

    data = load_pairs(tiny_units, heldout=1)
    assert attach_speakers(data, "resemblyzer", tmp_path / "s.npz") == EMBEDDER
    monkeypatch.setattr(SpeakerEncoder, "embed", lambda *a, **k: pytest.fail("re-encoded"))
    again = load_pairs(tiny_units, heldout=1)
    attach_speakers(again, "resemblyzer", tmp_path / "s.npz")  # read from the cache
    for p, q in zip(data.train + data.heldout, again.train + again.heldout):
        np.testing.assert_array_equal(p.spkr, q.spkr)
