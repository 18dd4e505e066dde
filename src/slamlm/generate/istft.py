"""A light unit vocoder (Vocos-style): unit embedding -> ConvNeXt -> STFT magnitude + phase -> iSTFT.

The backbone runs at ``upsample`` x the unit frame rate; each step predicts one STFT frame
(``n_fft`` bins, hop ``hop // upsample``), so ``T`` unit frames give ``T * hop`` samples. It
shares the unit HiFi-GAN's checkpoint layout (``g_XXXXXXXX`` with ``{"generator": state}`` and a
``config.json``, here with ``"model_type": "istft"``) and its duration predictor, so
``--vocoder hifigan:<folder>`` loads either. textlesslib has no such model: only the
``hifigan`` arch is textlesslib-loadable. Speaker conditioning uses the same config keys and
``spkr`` layer as the HiFi-GAN (:func:`slamlm.generate.hifigan.speaker_layer`).

Example:
    >>> gen = ISTFTGenerator(istft_config(num_embeddings=10, hop=640))
    >>> gen(torch.tensor([[1, 2, 3]])).shape
    torch.Size([1, 1920])
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from slamlm.generate.hifigan import DurationPredictor, add_speaker, speaker_layer


def istft_config(num_embeddings: int, hop: int = 640, dim: int = 192, layers: int = 6,
                 upsample: int = 4, embedding_dim: int = 128, sampling_rate: int = 16000,
                 dur_hidden: int = 128) -> dict[str, Any]:
    """The ``config.json`` of an :class:`ISTFTGenerator` (JSON-able dict)."""
    if hop % upsample:
        raise ValueError(f"istft vocoder: hop {hop} is not a multiple of upsample {upsample}")
    stft_hop = hop // upsample
    return {"model_type": "istft", "num_embeddings": int(num_embeddings),
            "embedding_dim": embedding_dim, "dim": dim, "layers": layers, "upsample": upsample,
            "code_hop_size": hop, "n_fft": 4 * stft_hop, "stft_hop": stft_hop,
            "sampling_rate": sampling_rate,
            "dur_predictor_params": {"encoder_embed_dim": embedding_dim,
                                     "var_pred_hidden_dim": dur_hidden,
                                     "var_pred_kernel_size": 3, "var_pred_dropout": 0.0}}


class ConvNeXtBlock(nn.Module):
    """Depthwise conv (k=7) -> LayerNorm -> 3x pointwise MLP (GELU) -> layer scale, residual."""

    def __init__(self, dim: int):
        super().__init__()
        self.dw = nn.Conv1d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim)
        self.pw1 = nn.Linear(dim, 3 * dim)
        self.pw2 = nn.Linear(3 * dim, dim)
        self.scale = nn.Parameter(torch.full((dim,), 0.1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, T)
        y = self.norm(self.dw(x).transpose(1, 2))
        y = self.pw2(F.gelu(self.pw1(y))) * self.scale
        return x + y.transpose(1, 2)


class ISTFTGenerator(nn.Module):
    """Units (B, T) -> waveform (B, T * code_hop_size) in [-1, 1]; same call as CodeHiFiGAN."""

    def __init__(self, cfg: dict[str, Any]):
        super().__init__()
        self.cfg = dict(cfg)
        d, e, r = int(cfg["dim"]), int(cfg["embedding_dim"]), int(cfg["upsample"])
        self.n_fft, self.stft_hop = int(cfg["n_fft"]), int(cfg["stft_hop"])
        self.dict = nn.Embedding(int(cfg["num_embeddings"]), e)
        self.conv_pre = nn.Conv1d(int(cfg.get("model_in_dim", e)), d, 7, padding=3)
        self.up = nn.ConvTranspose1d(d, d, 2 * r, r, padding=r // 2)
        self.blocks = nn.ModuleList(ConvNeXtBlock(d) for _ in range(int(cfg["layers"])))
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, self.n_fft + 2)  # (n_fft/2 + 1) magnitudes + phases
        self.register_buffer("window", torch.hann_window(self.n_fft), persistent=False)
        dur = cfg.get("dur_predictor_params")
        self.dur_predictor = DurationPredictor(**dur) if dur else None
        self.spkr = speaker_layer(cfg)

    @property
    def hop(self) -> int:
        return int(self.cfg["code_hop_size"])

    def forward(self, code: torch.Tensor, dur_prediction: bool = False,
                spkr: torch.Tensor | None = None) -> torch.Tensor:
        x = self.dict(code)  # (B, T, E)
        if dur_prediction:
            if self.dur_predictor is None or x.shape[0] != 1:
                raise ValueError("duration prediction needs a duration predictor and one utterance")
            x = torch.repeat_interleave(x, self.dur_predictor.durations(x).view(-1), dim=1)
        t = x.shape[1]
        x = add_speaker(x, self.spkr, spkr)  # (B, T, E [+ E])
        r = int(self.cfg["upsample"])
        h = self.up(F.gelu(self.conv_pre(x.transpose(1, 2))))[..., : t * r]
        for b in self.blocks:
            h = b(h)
        h = self.head(self.norm(h.transpose(1, 2))).float()  # (B, T*r, n_fft + 2)
        bins = self.n_fft // 2 + 1
        mag = torch.exp(h[..., :bins].clamp(max=6.0))
        phase = h[..., bins:]
        spec = torch.polar(mag, phase).transpose(1, 2)  # (B, bins, frames)
        wav = torch.istft(spec, self.n_fft, self.stft_hop, window=self.window, center=True,
                          length=t * self.hop)
        return wav.clamp(-1.0, 1.0)
