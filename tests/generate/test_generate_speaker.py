"""slam generate with a speaker-conditioned vocoder: --speaker-wav picks the voice; without
it (or with it on a vocoder that takes none) the run stops with a clear error."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import soundfile as sf
import torch

from slamlm.cli import main
from slamlm.generate.hifigan import CodeHiFiGAN, save_code_hifigan
from slamlm.generate.vocoder import load_vocoder
from slamlm.io import read_jsonl
from slamlm.units.speaker import INSTALL
from slamlm.vocoder.model import speaker_keys

needs_wheel = pytest.mark.skipif(
    importlib.util.find_spec("resemblyzer") is None,
    reason=f"Resemblyzer wheel (its pretrained.pt) not installed: {INSTALL}")

EMBEDDER = {"name": "resemblyzer", "id": "resemblyzer-0.1.4", "dim": 256}


@pytest.fixture
def spk_vocoder(tmp_path):
    """A random speaker-conditioned HiFi-GAN over the mel checkpoint's 24 units (25 Hz)."""
    torch.manual_seed(0)
    cfg = speaker_keys({
        "upsample_rates": [5, 4, 4, 8], "upsample_kernel_sizes": [11, 8, 8, 16],
        "upsample_initial_channel": 32, "resblock_kernel_sizes": [3],
        "resblock_dilation_sizes": [[1, 3, 5]], "num_embeddings": 24, "embedding_dim": 8,
        "model_in_dim": 8, "sampling_rate": 16000}, EMBEDDER)
    save_code_hifigan(CodeHiFiGAN(cfg), tmp_path / "voc", step=7)
    return tmp_path / "voc"


def _argv(ckpt, out, voc, *extra):
    return ["generate", str(ckpt), "--prompt-units", str(out.parent / "u.jsonl"), "--out",
            str(out), "--vocoder", f"hifigan:{voc}", "--max-new-tokens", "4", "--temperature",
            "0", "--device", "cpu", *extra]


def test_missing_reference_is_a_clear_error(mel_checkpoint, spk_vocoder, tmp_path, capsys):
    ckpt, prompt, ex = mel_checkpoint
    (tmp_path / "u.jsonl").write_text('{"id": "a", "units": [1, 1, 5, 7]}\n')
    assert main(_argv(ckpt, tmp_path / "g", spk_vocoder)) == 1
    err = capsys.readouterr().err
    assert "speaker-conditioned vocoder" in err and "pass --speaker-wav PATH" in err
    assert not (tmp_path / "g" / "generations.jsonl").exists()
    with pytest.raises(ValueError, match="no speaker input"):  # the mel inverse takes no voice
        load_vocoder("mel", ex.identity(), speaker_wav=str(prompt))


@needs_wheel
def test_generate_with_speaker_wav(mel_checkpoint, spk_vocoder, tmp_path):
    ckpt, prompt, _ = mel_checkpoint
    (tmp_path / "u.jsonl").write_text('{"id": "a", "units": [1, 1, 5, 7]}\n')
    assert main(_argv(ckpt, tmp_path / "g", spk_vocoder, "--speaker-wav", str(prompt))) == 0
    (rec,) = read_jsonl(tmp_path / "g" / "generations.jsonl")
    assert rec["speaker_wav"] == str(prompt)
    wav, sr = sf.read(tmp_path / "g" / rec["wav"])
    assert sr == 16000 and len(wav) % 640 == 0 and np.isfinite(wav).all()
    # the voice is an input: another embedding gives other samples for the same units
    voc = load_vocoder(f"hifigan:{spk_vocoder}", {"k": 24}, speaker_wav=str(prompt))
    units = np.array([1, 5, 7, 3])
    a = voc(units, np.ones(4, np.int64))
    other = np.roll(voc.speaker, 50)
    b = voc(units, np.ones(4, np.int64), speaker=other)
    assert a.shape == b.shape == (4 * 640,) and np.abs(a - b).max() > 1e-6
    # a plain vocoder refuses a reference instead of ignoring it
    plain = {k: v for k, v in voc.model.cfg.items()
             if k not in ("multispkr", "embedder_params", "embedder_dim")}
    save_code_hifigan(CodeHiFiGAN({**plain, "model_in_dim": 8}), tmp_path / "plain")
    with pytest.raises(ValueError, match="not speaker-conditioned"):
        load_vocoder(f"hifigan:{tmp_path / 'plain'}", {"k": 24}, speaker_wav=str(prompt))
