"""The trained module: a unit generator (HiFi-GAN or iSTFT, with a duration predictor) and,
optionally, a discriminator with its buffer-held Adam; plus the generator configs per arch.

Example:
    >>> m = VocoderModel(VocoderSpec("istft", generator_config("istft", n_units=10, hop=640)))
    >>> wav, logdur = m(torch.zeros(2, 5, dtype=torch.long), torch.zeros(2, 3, dtype=torch.long))
    >>> wav.shape, logdur.shape
    (torch.Size([2, 3200]), torch.Size([2, 3]))
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from slamlm.generate.hifigan import CodeHiFiGAN
from slamlm.generate.istft import ISTFTGenerator, istft_config
from slamlm.vocoder.discriminator import BufferAdam, Discriminator

# unit hop (samples per frame) -> HiFi-GAN upsample rates and kernels (textlesslib's, 50 Hz:
# [5, 4, 4, 2, 2] / [11, 8, 8, 4, 4]; one more x2 stage for 25 Hz units)
UPSAMPLES = {160: ([5, 4, 4, 2], [11, 8, 8, 4]), 320: ([5, 4, 4, 2, 2], [11, 8, 8, 4, 4]),
             640: ([5, 4, 4, 4, 2], [11, 8, 8, 8, 4])}


def hifigan_config(n_units: int, hop: int, channels: int = 128, embedding_dim: int = 128,
                   dur_hidden: int = 128, sampling_rate: int = 16000) -> dict[str, Any]:
    """A textlesslib ``CodeGenerator`` config (the keys its loader reads) for these units."""
    if hop not in UPSAMPLES:
        raise ValueError(f"no HiFi-GAN upsampling for hop {hop}; supported: {sorted(UPSAMPLES)}")
    rates, kernels = UPSAMPLES[hop]
    if channels < 2 ** len(rates):
        raise ValueError(f"hifigan: channels must be >= {2 ** len(rates)} (halved per stage)")
    return {"resblock": "1", "upsample_rates": rates, "upsample_kernel_sizes": kernels,
            "upsample_initial_channel": channels, "resblock_kernel_sizes": [3, 7, 11],
            "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
            "num_embeddings": int(n_units), "embedding_dim": embedding_dim,
            "model_in_dim": embedding_dim, "sampling_rate": sampling_rate, "code_hop_size": hop,
            "dur_predictor_params": {"encoder_embed_dim": embedding_dim,
                                     "var_pred_hidden_dim": dur_hidden,
                                     "var_pred_kernel_size": 3, "var_pred_dropout": 0.0}}


def speaker_keys(cfg: dict[str, Any], embedder: dict[str, Any]) -> dict[str, Any]:
    """``cfg`` made speaker-conditioned the way textlesslib's ``CodeGenerator`` reads it:
    ``multispkr``, ``embedder_params`` (here: which encoder made the embeddings),
    ``embedder_dim`` and ``model_in_dim`` = unit embedding + projected speaker embedding."""
    emb = int(cfg["embedding_dim"])
    return {**cfg, "multispkr": True, "embedder_params": dict(embedder),
            "embedder_dim": int(embedder["dim"]), "model_in_dim": emb + emb}


def generator_config(arch: str, n_units: int, hop: int, channels: int = 0, layers: int = 6,
                     embedder: dict[str, Any] | None = None) -> dict[str, Any]:
    """The generator's ``config.json``; ``embedder`` (``{"name", "id", "dim"}``) adds the
    speaker conditioning (:func:`speaker_keys`)."""
    if arch == "hifigan":
        cfg = hifigan_config(n_units, hop, channels or 128)
    elif arch == "istft":
        cfg = istft_config(n_units, hop, dim=channels or 192, layers=layers)
    else:
        raise ValueError(f"unknown vocoder arch {arch!r}: use hifigan or istft")
    return speaker_keys(cfg, embedder) if embedder else cfg


@dataclass
class VocoderSpec:
    """What ``config.json``'s ``model`` section holds for a vocoder training checkpoint."""

    arch: str
    generator: dict[str, Any]
    gan_channels: int = 0  # 0: no discriminator
    d_lr: float = 2e-4
    kind: str = field(default="vocoder")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def build_generator(arch: str, cfg: dict[str, Any]) -> nn.Module:
    gen = ISTFTGenerator(cfg) if arch == "istft" else CodeHiFiGAN(cfg)
    if arch == "hifigan":  # HiFi-GAN's init: N(0, 0.01) on the upsampling and output convs
        for m in [*gen.ups, gen.conv_post]:
            nn.init.normal_(m.weight, 0.0, 0.01)
    return gen


class VocoderModel(nn.Module):
    """``forward(frames, units, spkr=None) -> (wav, log(1 + duration) of each dedup unit)``;
    ``spkr`` (B, embedder_dim) for a speaker-conditioned generator."""

    def __init__(self, spec: VocoderSpec):
        super().__init__()
        self.config = spec
        self.generator = build_generator(spec.arch, spec.generator)
        if spec.gan_channels:
            self.discriminator = Discriminator(spec.gan_channels)
            self.d_opt = BufferAdam(self.discriminator, spec.d_lr)
            # DDP must not sync these (the objective all-reduces the discriminator's grads)
            self._ddp_params_and_buffers_to_ignore = [
                n for n, _ in self.named_parameters() if n.startswith("discriminator.")
            ] + [n for n, _ in self.named_buffers() if n.startswith(("d_opt.", "discriminator."))]
        else:
            self.discriminator = None

    def forward(self, frames: torch.Tensor, units: torch.Tensor,
                spkr: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        g = self.generator
        wav = g(frames, spkr=spkr)
        logdur = g.dur_predictor(g.dict(units))
        return wav, logdur
