"""Speech encoders that turn 16 kHz audio into frame features at 25 Hz (or the model's rate).

Two encoders share one small interface (``id``, ``dim``, ``layer``, ``min_seconds``,
``n_frames(n_samples)``, ``features(wavs) -> list[(n_i, dim) tensors]``):

- :class:`MelEncoder` (``"mel"``): weight-free log-mel frames, 80 bands, 1024-sample Hann
  window, hop 640 samples (40 ms, 25 Hz). ``n_frames = n_samples // 640``; frame ``i`` is the
  window centred on sample ``640 * i + 320`` with zeros outside the signal, so a frame never
  depends on how far a batch was padded. Each utterance is mean/variance normalised per band
  over its own frames only (``normalize="utterance"``), never over the batch.
- :class:`HubertEncoder` (``"hubert:<folder or hub id>"``): any HF ``HubertModel``; the
  forward stops after transformer layer ``layer`` (later layers are dropped, not computed).
  As the peer toolkit (slamkit) and textlesslib do, each waveform gets ``pad = 40`` zero
  samples on both sides first, so the 25 Hz stack (receptive field 720, stride 640) gives
  ``n_samples // 640`` frames, frame ``i`` centred on sample ``640 * i + 320`` like the mel
  frames (unpadded it would be ``(n_samples - 80) // 640``, 40 samples off).
  Models with ``feat_extract_norm == "layer"`` are run on padded batches with an attention
  mask; models with ``"group"`` (HuBERT-base, mHuBERT-25Hz) normalise over time in the first
  conv layer, which padding would change, so they are only batched with files of exactly the
  same length (otherwise one by one). Either way a file's features do not depend on the batch.

Example:
    >>> import numpy as np
    >>> enc = MelEncoder()
    >>> [f.shape for f in enc.features([np.zeros(16000, np.float32)])]
    [torch.Size([25, 80])]
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from slamlm.units.mel import SAMPLE_RATE, MelEncoder, mel_filterbank  # noqa: F401 - re-exported

log = logging.getLogger(__name__)

HUBERT_PAD = 40  # zero samples on each side of a waveform before HuBERT (slamkit, textlesslib)


def conv_frames(n_samples: int, kernels: tuple[int, ...], strides: tuple[int, ...]) -> int:
    """Output length of a stack of unpadded 1-D convolutions (HuBERT's feature extractor)."""
    n = n_samples
    for k, s in zip(kernels, strides):
        n = (n - k) // s + 1 if n >= k else 0
    return max(n, 0)


def receptive_field(kernels: tuple[int, ...], strides: tuple[int, ...]) -> int:
    """Samples one output frame of the conv stack sees (the shortest usable input)."""
    rf, jump = 1, 1
    for k, s in zip(kernels, strides):
        rf += (k - 1) * jump
        jump *= s
    return rf


class HubertEncoder:
    """An HF ``HubertModel`` cut after transformer layer ``layer`` (1-based, fairseq style).

    Input: each waveform zero-padded by ``pad`` samples on both sides (slamkit:
    ``F.pad(wav, (40, 40))``), then the model, in fp32 unless ``dtype`` says otherwise (bf16
    is faster on GPUs but changes ~1% of the units); features equal
    ``HubertModel(F.pad(wav, (pad, pad)), output_hidden_states=True).hidden_states[layer]``.
    """

    def __init__(self, name: str, layer: int = 11, device: str | torch.device = "cpu",
                 dtype: torch.dtype | None = None, max_batch: int = 64, pad: int = HUBERT_PAD):
        from transformers import HubertModel

        self.name, self.layer, self.max_batch, self.pad = name, layer, max_batch, pad
        self.device = torch.device(device)
        # fp32 by default, as slamkit: bf16 changes ~1% of units (98.6-99.0% agreement on a
        # random HuBERT-25Hz, bench/units_bf16_agreement.py; the bar was 99.5%)
        self.dtype = dtype or torch.float32
        model = HubertModel.from_pretrained(name, dtype=self.dtype)
        n_layers = len(model.encoder.layers)
        if not 1 <= layer <= n_layers:
            raise ValueError(f"hubert:{name}: layer {layer} does not exist; the model has "
                             f"layers 1..{n_layers} (pass --layer)")
        model.encoder.layers = torch.nn.ModuleList(list(model.encoder.layers)[:layer])
        if model.config.do_stable_layer_norm:  # final norm belongs after the last layer only
            model.encoder.layer_norm = torch.nn.Identity()
        self.model = model.eval().to(self.device)
        cfg = model.config
        self.kernels, self.strides = tuple(cfg.conv_kernel), tuple(cfg.conv_stride)
        self.padded_ok = cfg.feat_extract_norm == "layer"
        self.dim = int(cfg.hidden_size)
        rf = receptive_field(self.kernels, self.strides) - 2 * pad
        self.min_seconds = max(0.1, rf / SAMPLE_RATE)
        self.do_normalize = _reads_do_normalize(name)
        self.id = f"hubert:{name}"

    def n_frames(self, n_samples: int) -> int:
        """Frames for ``n_samples`` (before the ``pad`` on each side is added)."""
        return conv_frames(n_samples + 2 * self.pad, self.kernels, self.strides)

    def _prep(self, w: np.ndarray) -> torch.Tensor:
        x = torch.as_tensor(np.asarray(w, dtype=np.float32))
        if self.do_normalize:  # per utterance, over its own samples only
            x = (x - x.mean()) / torch.sqrt(x.var(unbiased=False) + 1e-7)
        return x

    @torch.no_grad()
    def _run(self, wavs: list[torch.Tensor]) -> list[torch.Tensor]:
        """One forward: each wav at offset ``pad``, its ``pad`` zeros on both sides unmasked."""
        lens = [len(w) for w in wavs]
        width = max(lens) + 2 * self.pad
        x = torch.zeros(len(wavs), width)
        mask = torch.zeros(len(wavs), width, dtype=torch.long)
        for i, w in enumerate(wavs):
            x[i, self.pad: self.pad + lens[i]] = w
            mask[i, : lens[i] + 2 * self.pad] = 1
        x = x.to(self.device, self.dtype)
        same = len(set(lens)) == 1
        am = None if same else mask.to(self.device)
        h = self.model(x, attention_mask=am).last_hidden_state  # (B, F, D)
        return [h[i, : self.n_frames(n)].float() for i, n in enumerate(lens)]

    def features(self, wavs: list[np.ndarray]) -> list[torch.Tensor]:
        """Batch-invariant features: padded batches only for layer-norm feature extractors."""
        prepped = [self._prep(w) for w in wavs]
        out: list[torch.Tensor | None] = [None] * len(wavs)
        if self.padded_ok:
            groups = [list(range(len(wavs)))]
        else:  # group norm over time: batch only equal lengths
            by_len: dict[int, list[int]] = defaultdict(list)
            for i, w in enumerate(prepped):
                by_len[len(w)].append(i)
            groups = list(by_len.values())
        for g in groups:
            for start in range(0, len(g), self.max_batch):
                idx = g[start:start + self.max_batch]
                for i, f in zip(idx, self._run([prepped[i] for i in idx])):
                    out[i] = f
        return out  # type: ignore[return-value]


def _reads_do_normalize(name: str) -> bool:
    """``do_normalize`` from a local ``preprocessor_config.json`` (False when absent)."""
    p = Path(name) / "preprocessor_config.json"
    if p.is_file():
        return bool(json.loads(p.read_text()).get("do_normalize", False))
    if not Path(name).exists():
        try:
            from transformers import AutoFeatureExtractor

            return bool(getattr(AutoFeatureExtractor.from_pretrained(name), "do_normalize", False))
        except Exception:  # no preprocessor config on the hub: HuBERT default
            return False
    return False


def encoder_id(spec: str) -> str:
    """The id an encoder made from ``spec`` reports (what a k-means records), without loading
    weights: ``phones:<folder>`` names the absolute folder, other specs name themselves."""
    if spec.startswith("phones:"):
        return f"phones:{Path(spec[len('phones:'):]).resolve()}"
    return spec


def load_encoder(spec: str, layer: int = 11, device: str | torch.device = "cpu",
                 dtype: torch.dtype | None = None,
                 pad: int | None = None) -> MelEncoder | HubertEncoder:
    """``"mel"`` or ``"hubert:<folder or hub id>"`` -> an encoder on ``device``.

    ``pad``: HuBERT input padding per side (default 40, as slamkit; 0 re-creates units made
    before slamlm padded).
    """
    if spec == "mel":
        return MelEncoder(device=device)
    if spec.startswith("mel:"):
        try:
            dims, norm = spec[4:].split(":")
            n_mels, n_fft, hop = (int(v) for v in dims.split("x"))
        except ValueError as e:
            raise ValueError(f"encoder {spec!r}: expected mel or mel:<mels>x<fft>x<hop>:<norm>") from e
        return MelEncoder(n_mels, n_fft, hop, norm, device=device)
    if spec.startswith("hubert:"):
        return HubertEncoder(spec[len("hubert:"):], layer=layer, device=device, dtype=dtype,
                             pad=HUBERT_PAD if pad is None else pad)
    if spec.startswith("phones:"):
        from slamlm.units.phones import PhoneEncoder

        return PhoneEncoder(spec[len("phones:"):], device=device)
    raise ValueError(f"unknown encoder {spec!r}: use 'mel', 'hubert:<folder or hub id>' or "
                     f"'phones:<folder>' (slam units train-phones)")

