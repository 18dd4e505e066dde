"""Unit HiFi-GAN (textlesslib / fairseq ``CodeHiFiGANVocoder`` checkpoints) in plain torch.

A checkpoint is a ``g_00500000``-style file holding ``{"generator": state_dict}`` plus a
``config.json`` with ``upsample_rates``, ``upsample_kernel_sizes``,
``upsample_initial_channel``, ``resblock_kernel_sizes``, ``resblock_dilation_sizes``,
``num_embeddings``, ``embedding_dim``, ``model_in_dim`` and optionally
``dur_predictor_params``; a speaker-conditioned one (textlesslib's ``CodeGenerator`` d-vector
variant) also has ``multispkr``, ``embedder_params`` and ``embedder_dim``: a ``spkr``
Linear(embedder_dim, embedding_dim) maps the utterance's speaker embedding, repeated over
every frame and concatenated after the unit embedding (so ``model_in_dim`` = 2 x
``embedding_dim``). Module names match the originals (``dict``, ``conv_pre``, ``ups``,
``resblocks.N.convs1/convs2``, ``conv_post``, ``dur_predictor.conv1/ln1/conv2/ln2/proj``) so
state dicts load by name; weight-norm pairs (``weight_g``/``weight_v`` or
``parametrizations.weight.original0/1``) are folded into plain weights at load time.

Example:
    >>> # gen = load_code_hifigan("vocoder/g_00500000", "vocoder/config.json")
    >>> # wav = gen(torch.tensor([[3, 49, 49, 7]]))   # (1, 4 * gen.hop)
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

log = logging.getLogger(__name__)

LRELU_SLOPE = 0.1
UNSUPPORTED_KEYS = ("f0", "multistyle")  # F0 / style conditioning


def _pad(kernel: int, dilation: int = 1) -> int:
    return (kernel * dilation - dilation) // 2


class ResBlock(nn.Module):
    """HiFi-GAN residual block type 1: three (dilated conv, conv) pairs with leaky ReLUs."""

    def __init__(self, channels: int, kernel: int, dilations: list[int]):
        super().__init__()
        self.convs1 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel, 1, dilation=d, padding=_pad(kernel, d))
            for d in dilations
        )
        self.convs2 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel, 1, padding=_pad(kernel)) for _ in dilations
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for c1, c2 in zip(self.convs1, self.convs2):
            x = x + c2(F.leaky_relu(c1(F.leaky_relu(x, LRELU_SLOPE)), LRELU_SLOPE))
        return x


class DurationPredictor(nn.Module):
    """fairseq ``VariancePredictor``: conv-ReLU-LN twice, then a linear to log(1 + duration)."""

    def __init__(self, encoder_embed_dim: int, var_pred_hidden_dim: int,
                 var_pred_kernel_size: int, var_pred_dropout: float = 0.0):
        super().__init__()
        k = var_pred_kernel_size
        self.conv1 = nn.Sequential(
            nn.Conv1d(encoder_embed_dim, var_pred_hidden_dim, k, padding=(k - 1) // 2), nn.ReLU()
        )
        self.ln1 = nn.LayerNorm(var_pred_hidden_dim)
        self.conv2 = nn.Sequential(
            nn.Conv1d(var_pred_hidden_dim, var_pred_hidden_dim, k, padding=1), nn.ReLU()
        )
        self.ln2 = nn.LayerNorm(var_pred_hidden_dim)
        self.proj = nn.Linear(var_pred_hidden_dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, C) embeddings -> (B, T) log(1 + duration)."""
        x = self.ln1(self.conv1(x.transpose(1, 2)).transpose(1, 2))
        x = self.ln2(self.conv2(x.transpose(1, 2)).transpose(1, 2))
        return self.proj(x).squeeze(-1)

    def durations(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, C) -> integer frame counts >= 1, as the reference rounds them."""
        return torch.clamp(torch.round(torch.exp(self(x)) - 1).long(), min=1)


class CodeHiFiGAN(nn.Module):
    """Unit-to-waveform generator: unit embedding -> conv_pre -> upsample + MRF -> tanh."""

    def __init__(self, cfg: dict[str, Any]):
        super().__init__()
        bad = [k for k in UNSUPPORTED_KEYS if cfg.get(k)]
        if bad:
            raise ValueError(
                f"HiFi-GAN config uses {', '.join(bad)} (F0/style conditioning), which slamlm "
                f"does not support; use a unit vocoder without it"
            )
        if str(cfg.get("resblock", "1")) != "1":
            raise ValueError(f"HiFi-GAN resblock type {cfg['resblock']!r} is not supported (only '1')")
        self.cfg = dict(cfg)
        ch = int(cfg["upsample_initial_channel"])
        self.num_kernels = len(cfg["resblock_kernel_sizes"])
        self.dict = nn.Embedding(int(cfg["num_embeddings"]), int(cfg["embedding_dim"]))
        self.conv_pre = nn.Conv1d(int(cfg.get("model_in_dim", 80)), ch, 7, 1, padding=3)
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        for i, (u, k) in enumerate(zip(cfg["upsample_rates"], cfg["upsample_kernel_sizes"])):
            c_in, c_out = ch // 2**i, ch // 2 ** (i + 1)
            self.ups.append(nn.ConvTranspose1d(c_in, c_out, k, u, padding=(k - u) // 2))
            for rk, rd in zip(cfg["resblock_kernel_sizes"], cfg["resblock_dilation_sizes"]):
                self.resblocks.append(ResBlock(c_out, rk, list(rd)))
        self.conv_post = nn.Conv1d(c_out, 1, 7, 1, padding=3)
        dur = cfg.get("dur_predictor_params")
        self.dur_predictor = DurationPredictor(**dur) if dur else None
        self.spkr = speaker_layer(cfg)

    @property
    def hop(self) -> int:
        """Waveform samples per unit frame (320 for 50 Hz units at 16 kHz, 640 for 25 Hz)."""
        return int(math.prod(self.cfg["upsample_rates"]))

    def forward(self, code: torch.Tensor, dur_prediction: bool = False,
                spkr: torch.Tensor | None = None) -> torch.Tensor:
        """``code`` (B, T) unit ids -> waveform (B, T' * hop) in [-1, 1].

        With ``dur_prediction`` (B must be 1) each unit is repeated by the predicted duration,
        for deduplicated units; T' is then the sum of durations. ``spkr`` (B, embedder_dim):
        the speaker embedding, required by (and only by) a speaker-conditioned vocoder.
        """
        x = self.dict(code)  # (B, T, C)
        if dur_prediction:
            if self.dur_predictor is None:
                raise ValueError("this vocoder has no duration predictor (dur_predictor_params)")
            if x.shape[0] != 1:
                raise ValueError("duration prediction works on one utterance at a time")
            x = torch.repeat_interleave(x, self.dur_predictor.durations(x).view(-1), dim=1)
        x = add_speaker(x, self.spkr, spkr)  # (B, T, C [+ C])
        x = self.conv_pre(x.transpose(1, 2))  # (B, C, T)
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, LRELU_SLOPE))
            blocks = self.resblocks[i * self.num_kernels: (i + 1) * self.num_kernels]
            x = sum(b(x) for b in blocks) / self.num_kernels
        x = self.conv_post(F.leaky_relu(x))  # default slope 0.01, as the reference
        return torch.tanh(x).squeeze(1)


def speaker_layer(cfg: dict[str, Any]) -> nn.Linear | None:
    """textlesslib's ``spkr`` for a d-vector (``multispkr`` + ``embedder_params``) config:
    Linear(embedder_dim, embedding_dim); None for a single-speaker one. A speaker-id table
    (``multispkr`` without ``embedder_params``) is refused: slamlm conditions on embeddings."""
    multi, embedder = cfg.get("multispkr"), cfg.get("embedder_params")
    if not multi and not embedder:
        return None
    if not embedder:
        raise ValueError("vocoder config: multispkr without embedder_params is a speaker-id "
                         "table, which slamlm does not support (only speaker embeddings)")
    if not multi:
        raise ValueError("vocoder config: embedder_params without multispkr (textlesslib "
                         "would build the speaker layer but never use it); set multispkr")
    emb = int(cfg["embedding_dim"])
    want = emb + emb
    if int(cfg.get("model_in_dim", 80)) != want:
        raise ValueError(f"vocoder config: a speaker-conditioned model needs model_in_dim = "
                         f"embedding_dim x 2 = {want}, got {cfg.get('model_in_dim', 80)}")
    return nn.Linear(int(cfg.get("embedder_dim", 256)), emb)


def add_speaker(x: torch.Tensor, layer: nn.Linear | None, spkr: torch.Tensor | None
                ) -> torch.Tensor:
    """Unit embeddings (B, T, C) -> (B, T, 2C) with ``layer(spkr)`` repeated on every frame
    (textlesslib: ``cat([x, upsample(spkr(e))], dim=channels)``); unchanged without a layer."""
    if layer is None:
        if spkr is not None:
            raise ValueError("this vocoder is not speaker-conditioned: drop the speaker embedding")
        return x
    if spkr is None:
        raise ValueError("this vocoder is speaker-conditioned (multispkr + embedder_params in "
                         "its config.json): give a speaker embedding (slam generate "
                         "--speaker-wav PATH)")
    s = layer(spkr.to(x.dtype).reshape(x.shape[0], -1))  # (B, C)
    return torch.cat([x, s[:, None, :].expand(-1, x.shape[1], -1)], dim=2)


def fold_weight_norm(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Replace weight-norm pairs by plain weights: ``w = g * v / ||v||`` (norm over dims 1..).

    Handles ``X.weight_g``/``X.weight_v`` (torch.nn.utils.weight_norm, as fairseq saves) and
    ``X.parametrizations.weight.original0/1`` (torch.nn.utils.parametrizations.weight_norm).
    """
    out: dict[str, torch.Tensor] = {}
    pairs = {".weight_g": ".weight_v", ".parametrizations.weight.original0":
             ".parametrizations.weight.original1"}
    for key, value in state.items():
        for g_suffix, v_suffix in pairs.items():
            if key.endswith(g_suffix):
                stem = key[: -len(g_suffix)]
                v = state[stem + v_suffix].float()
                norm = v.norm(dim=tuple(range(1, v.dim())), keepdim=True)
                out[stem + ".weight"] = (value.float() * v / norm).to(value.dtype)
                break
        else:
            if not any(key.endswith(v_suffix) for v_suffix in pairs.values()):
                out[key] = value
    return out


def unfold_weight_norm(model: nn.Module) -> dict[str, torch.Tensor]:
    """Our plain state dict -> fairseq layout with ``weight_g``/``weight_v`` on every conv."""
    out: dict[str, torch.Tensor] = {}
    convs = {name for name, m in model.named_modules()
             if isinstance(m, (nn.Conv1d, nn.ConvTranspose1d)) and not name.startswith("dur_")}
    for key, value in model.state_dict().items():
        stem = key.rsplit(".", 1)[0]
        if key.endswith(".weight") and stem in convs:
            out[stem + ".weight_g"] = value.norm(dim=tuple(range(1, value.dim())), keepdim=True)
            out[stem + ".weight_v"] = value.clone()
        else:
            out[key] = value
    return out


def load_code_hifigan(checkpoint: str | Path, config: str | Path | None = None,
                      device: str | torch.device = "cpu", model_cls: type = CodeHiFiGAN
                      ) -> CodeHiFiGAN:
    """Load a textlesslib/fairseq unit HiFi-GAN: ``checkpoint`` file (or folder) + config JSON.

    ``config`` defaults to ``config.json`` beside the checkpoint; a folder ``checkpoint`` uses
    its newest ``g_*`` file. ``model_cls`` builds the model from the config (the light
    :class:`slamlm.generate.istft.ISTFTGenerator` shares this layout).
    """
    ckpt = Path(checkpoint)
    if ckpt.is_dir():
        found = sorted(ckpt.glob("g_*"))
        if not found:
            raise FileNotFoundError(f"{ckpt}: no g_XXXXXXXX generator checkpoint in this folder")
        ckpt = found[-1]
    cfg_path = Path(config) if config else ckpt.parent / "config.json"
    if not cfg_path.is_file():
        raise FileNotFoundError(f"{cfg_path}: HiFi-GAN config JSON not found (pass it explicitly)")
    if not ckpt.is_file():
        raise FileNotFoundError(f"{ckpt}: HiFi-GAN checkpoint not found")
    cfg = json.loads(cfg_path.read_text())
    blob = torch.load(ckpt, map_location="cpu", weights_only=True)
    state = blob.get("generator", blob) if isinstance(blob, dict) else None
    if not isinstance(state, dict):
        raise ValueError(f"{ckpt}: expected a dict with a 'generator' state dict")
    model = model_cls(cfg)
    hint = "is this config the one trained with the checkpoint?"
    try:
        missing, unexpected = model.load_state_dict(fold_weight_norm(state), strict=False)
    except RuntimeError as e:  # shape mismatch
        raise ValueError(f"{ckpt}: does not match {cfg_path} ({str(e)[:300]}); {hint}") from e
    if missing or unexpected:
        raise ValueError(f"{ckpt}: does not match {cfg_path} (missing {missing[:5]}, "
                         f"unexpected {unexpected[:5]}); {hint}")
    return model.to(device).eval()


def checkpoint_config(checkpoint: str | Path) -> dict[str, Any]:
    """The ``config.json`` beside a ``g_*`` file (or in its folder), parsed."""
    p = Path(checkpoint)
    cfg_path = (p if p.is_dir() else p.parent) / "config.json"
    if not cfg_path.is_file():
        raise FileNotFoundError(f"{cfg_path}: HiFi-GAN config JSON not found")
    return json.loads(cfg_path.read_text())


def save_code_hifigan(model: nn.Module, folder: str | Path, step: int = 0) -> Path:
    """Write ``folder/g_XXXXXXXX`` (fairseq layout) and ``folder/config.json``; return the ckpt."""
    from slamlm.io import atomic_write_bytes, atomic_write_text

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    import io

    buf = io.BytesIO()
    torch.save({"generator": unfold_weight_norm(model)}, buf)
    path = atomic_write_bytes(folder / f"g_{step:08d}", buf.getvalue())
    atomic_write_text(folder / "config.json", json.dumps(model.cfg, indent=2))
    return path
