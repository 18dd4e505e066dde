"""Our exported HiFi-GAN loads the way textlesslib's ``CodeHiFiGANVocoder`` loads it.

textlesslib (textless/vocoders/hifigan/vocoder.py) does ``json.load(config)``,
``CodeGenerator(cfg)`` and ``load_state_dict(torch.load(ckpt)["generator"])`` (strict) into a
generator whose convs are wrapped in ``torch.nn.utils.weight_norm``. This test rebuilds that
module tree from the config exactly as its source reads the keys (``cfg[...]`` = required,
``cfg.get(...)`` = optional) and loads our file strictly: key names and shapes must match.
It then folds the weight norm, as its ``remove_weight_norm`` does, and checks the output
equals our loader's. A speaker-conditioned export (``--speaker-embedding resemblyzer``) is
checked the same way against its d-vector branch: ``multispkr`` + ``embedder_params`` ->
``spkr = Linear(cfg.get("embedder_dim", 256), cfg["embedding_dim"])``, whose output on the
(B, 1, 256) embedding is upsampled (repeated) to every frame and concatenated after the units.
"""

from __future__ import annotations

import json

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import weight_norm

from slamlm.config import build_config
from slamlm.generate.hifigan import load_code_hifigan
from slamlm.vocoder.runner import VocoderConfig, run_vocoder

REQUIRED = ["resblock_kernel_sizes", "upsample_rates", "upsample_kernel_sizes",
            "upsample_initial_channel", "resblock_dilation_sizes", "num_embeddings",
            "embedding_dim"]
DUR_KEYS = ["encoder_embed_dim", "var_pred_hidden_dim", "var_pred_kernel_size",
            "var_pred_dropout"]


class TextlessTree(nn.Module):
    """CodeGenerator's parameter layout (names, weight-norm wrapping) from a config."""

    def __init__(self, cfg):
        super().__init__()
        ch = cfg["upsample_initial_channel"]
        self.conv_pre = weight_norm(nn.Conv1d(cfg.get("model_in_dim", 80), ch, 7, 1, padding=3))
        self.ups = nn.ModuleList(
            weight_norm(nn.ConvTranspose1d(ch // 2**i, ch // 2 ** (i + 1), k, u,
                                           padding=(k - u) // 2))
            for i, (u, k) in enumerate(zip(cfg["upsample_rates"], cfg["upsample_kernel_sizes"])))
        self.resblocks = nn.ModuleList()
        for i in range(len(self.ups)):
            c = ch // 2 ** (i + 1)
            for k, d in zip(cfg["resblock_kernel_sizes"], cfg["resblock_dilation_sizes"]):
                blk = nn.Module()
                blk.convs1 = nn.ModuleList(weight_norm(nn.Conv1d(c, c, k, 1, dilation=x,
                                                                 padding=(k * x - x) // 2))
                                           for x in d)
                blk.convs2 = nn.ModuleList(weight_norm(nn.Conv1d(c, c, k, 1, padding=(k - 1) // 2))
                                           for _ in d)
                self.resblocks.append(blk)
        self.conv_post = weight_norm(nn.Conv1d(c, 1, 7, 1, padding=3))
        self.dict = nn.Embedding(cfg["num_embeddings"], cfg["embedding_dim"])
        p = cfg["dur_predictor_params"]
        e, h, k = (p[x] for x in DUR_KEYS[:3])
        self.dur_predictor = nn.Module()
        self.dur_predictor.conv1 = nn.Sequential(nn.Conv1d(e, h, k, padding=(k - 1) // 2), nn.ReLU())
        self.dur_predictor.ln1 = nn.LayerNorm(h)
        self.dur_predictor.conv2 = nn.Sequential(nn.Conv1d(h, h, k, padding=1), nn.ReLU())
        self.dur_predictor.ln2 = nn.LayerNorm(h)
        self.dur_predictor.proj = nn.Linear(h, 1)
        self.multispkr, self.embedder = cfg.get("multispkr", None), cfg.get("embedder_params", None)
        if self.multispkr and not self.embedder:
            self.spkr = nn.Embedding(cfg.get("num_speakers", 200), cfg["embedding_dim"])
        elif self.embedder:
            self.spkr = nn.Linear(cfg.get("embedder_dim", 256), cfg["embedding_dim"])
        self.cfg = cfg

    @staticmethod
    def _upsample(signal, max_frames):  # CodeGenerator._upsample for a (B, C, L) signal
        bsz, channels, cond_length = signal.size()
        signal = signal.unsqueeze(3).repeat(1, 1, 1, max_frames // cond_length)
        return signal.view(bsz, channels, max_frames)

    def forward(self, code, spkr=None):  # textlesslib's CodeGenerator.forward without F0
        x = self.dict(code).transpose(1, 2)
        if self.multispkr:
            s = self._upsample(self.spkr(spkr).transpose(1, 2), x.shape[-1])
            x = torch.cat([x, s], dim=1)
        x = self.conv_pre(x)
        nk = len(self.cfg["resblock_kernel_sizes"])
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, 0.1))
            xs = 0
            for blk in self.resblocks[i * nk:(i + 1) * nk]:
                y = x
                for c1, c2 in zip(blk.convs1, blk.convs2):
                    y = y + c2(F.leaky_relu(c1(F.leaky_relu(y, 0.1)), 0.1))
                xs = xs + y
            x = xs / nk
        return torch.tanh(self.conv_post(F.leaky_relu(x))).squeeze(1)


def test_exported_hifigan_loads_with_textlesslib_logic(tiny_units, tmp_path):
    out = tmp_path / "run"
    g = run_vocoder(build_config(VocoderConfig, base={
        "units": str(tiny_units), "out": str(out), "arch": "hifigan", "channels": 32,
        "device": "cpu", "heldout": 1, "segment": 0.4, "train": {"batch_size": 2},
        "schedule": {"max_steps": 2, "eval_every": 0, "ckpt_every": 0}}))
    with open(out / "config.json") as f:
        cfg = json.load(f)
    assert all(k in cfg for k in REQUIRED) and all(k in cfg["dur_predictor_params"] for k in DUR_KEYS)
    assert not cfg.get("multispkr") and not cfg.get("f0") and cfg["sampling_rate"] == 16000
    state = torch.load(g, map_location="cpu")["generator"]  # textlesslib's call
    tree = TextlessTree(cfg)
    tree.load_state_dict(state)  # strict: every name and shape as textlesslib expects
    for m in tree.modules():  # textlesslib's remove_weight_norm
        if hasattr(m, "weight_g"):
            torch.nn.utils.remove_weight_norm(m)
    ours = load_code_hifigan(out)
    code = torch.tensor([[1, 5, 5, 9, 2, 2, 2, 14]])
    with torch.no_grad():
        torch.testing.assert_close(tree(code), ours(code), rtol=1e-4, atol=1e-5)


def test_speaker_conditioned_export_loads_with_textlesslib_logic(tmp_path):
    """The config keys and the ``spkr`` layer of a d-vector CodeGenerator (no wheel needed:
    the generator is built from the config slam vocoder train writes)."""
    from slamlm.generate.hifigan import CodeHiFiGAN, save_code_hifigan
    from slamlm.vocoder.model import build_generator, generator_config

    torch.manual_seed(0)
    embedder = {"name": "resemblyzer", "id": "resemblyzer-0.1.4", "dim": 256}
    cfg = generator_config("hifigan", n_units=16, hop=640, channels=32, embedder=embedder)
    assert cfg["multispkr"] is True and cfg["embedder_params"] == embedder
    assert cfg["embedder_dim"] == 256 and cfg["model_in_dim"] == 2 * cfg["embedding_dim"]
    gen = build_generator("hifigan", cfg)
    assert isinstance(gen, CodeHiFiGAN) and tuple(gen.spkr.weight.shape) == (cfg["embedding_dim"], 256)
    g = save_code_hifigan(gen, tmp_path / "voc", step=3)
    with open(tmp_path / "voc" / "config.json") as f:
        saved = json.load(f)
    assert saved == cfg  # config round trip
    tree = TextlessTree(saved)
    tree.load_state_dict(torch.load(g, map_location="cpu")["generator"])  # strict
    for m in tree.modules():
        if hasattr(m, "weight_g"):
            torch.nn.utils.remove_weight_norm(m)
    ours = load_code_hifigan(tmp_path / "voc")
    assert ours.spkr is not None
    code = torch.tensor([[1, 5, 5, 9, 2, 2, 2, 14]])
    e = torch.rand(1, 256)
    e = e / e.norm()
    with torch.no_grad():
        want = tree(code, spkr=e[:, None, :])  # textlesslib's input: (B, 1, embedder_dim)
        torch.testing.assert_close(want, ours(code, spkr=e), rtol=1e-4, atol=1e-5)
