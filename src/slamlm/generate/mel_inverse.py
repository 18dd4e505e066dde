"""Weight-free vocoder for the built-in ``mel`` units: centroids -> mel -> linear -> Griffin-Lim.

The ``mel`` encoder's k-means centroids are log-mel frames (80 bands, 1024-sample window, hop
640 = 25 Hz), per-utterance mean/variance normalised per band. Inversion:

1. units (+ run-length durations) -> one centroid per 40 ms frame;
2. undo the normalisation with per-band level statistics (``MelStats``): measured on a
   reference waveform (the prompt) when there is one, else a generic speech-like profile
   (the absolute level and spectral tilt are not recoverable from normalised centroids);
3. log-mel -> mel power -> linear power spectrum with the (non-negative) pseudo-inverse of the
   encoder's mel filterbank;
4. interpolate frames to a 10 ms hop and run Griffin-Lim (``torch.stft``/``istft``, momentum
   0.99) -> 16 kHz waveform of ``n_frames * 640`` samples.

Example:
    >>> # inv = MelInverter(kmeans.centroids)          # from the mel k-means file
    >>> # wav = inv(units, durations, reference=prompt_wav)   # float32, 16 kHz
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from slamlm.units.encoders import SAMPLE_RATE, MelEncoder, mel_filterbank

log = logging.getLogger(__name__)

GL_HOP = 160  # Griffin-Lim hop: 4 steps per 40 ms unit frame


@dataclass(frozen=True)
class MelStats:
    """Per-band mean and std of (un-normalised) log-mel frames, shape (n_mels,) each."""

    mean: torch.Tensor
    std: torch.Tensor

    @classmethod
    def from_wav(cls, wav: np.ndarray, encoder: MelEncoder) -> MelStats:
        """Measure the level/tilt of ``wav`` (16 kHz) with the encoder's own framing."""
        raw = MelEncoder(encoder.n_mels, encoder.n_fft, encoder.hop, normalize="none")
        frames = raw.features([np.asarray(wav, dtype=np.float32)])[0]
        if len(frames) < 2:
            raise ValueError("reference audio is shorter than two mel frames (80 ms)")
        return cls(frames.mean(0), frames.std(0, unbiased=False) + 1e-5)

    @classmethod
    def generic(cls, n_mels: int = 80) -> MelStats:
        """A speech-like default: level falling ~2 nepers per octave above 500 Hz, std 1.5."""
        mel_max = 2595.0 * np.log10(1.0 + (SAMPLE_RATE / 2) / 700.0)
        mels = np.linspace(0, mel_max, n_mels + 2)[1:-1]
        hz = 700.0 * (10.0 ** (mels / 2595.0) - 1.0)
        mean = -4.0 - 2.0 * np.log2(np.maximum(hz, 500.0) / 500.0)
        return cls(torch.tensor(mean, dtype=torch.float32), torch.full((n_mels,), 1.5))


def nonneg_pinv(fb: torch.Tensor) -> torch.Tensor:
    """Pseudo-inverse of a (n_mels, n_freq) filterbank, shape (n_freq, n_mels)."""
    return torch.linalg.pinv(fb.double()).float()


def griffin_lim(mag: torch.Tensor, n_fft: int, hop: int, length: int, n_iter: int = 32,
                momentum: float = 0.99, seed: int = 0) -> torch.Tensor:
    """Phase from a magnitude spectrogram (n_freq, frames) -> waveform (length,) (fast GL)."""
    window = torch.hann_window(n_fft, dtype=mag.dtype)
    gen = torch.Generator().manual_seed(seed)
    phase = torch.exp(2j * torch.pi * torch.rand(mag.shape, generator=gen, dtype=mag.dtype))
    prev = torch.zeros_like(phase)
    stft = dict(n_fft=n_fft, hop_length=hop, window=window, center=True)
    for _ in range(n_iter):
        wav = torch.istft(mag * phase, length=length, **stft)
        spec = torch.stft(wav, return_complex=True, **stft)[:, : mag.shape[1]]
        accel = spec - (momentum / (1 + momentum)) * prev
        prev = spec
        phase = accel / accel.abs().clamp_min(1e-8)
    return torch.istft(mag * phase, length=length, **stft)


class MelInverter:
    """Invert ``mel`` units to audio with the encoder's filterbank and k-means centroids."""

    sample_rate = SAMPLE_RATE

    def __init__(self, centroids: torch.Tensor, encoder: MelEncoder | None = None,
                 n_iter: int = 32, seed: int = 0):
        self.encoder = encoder or MelEncoder()
        self.centroids = torch.as_tensor(centroids, dtype=torch.float32).cpu()
        if self.centroids.shape[1] != self.encoder.n_mels:
            raise ValueError(f"k-means centroids have dim {self.centroids.shape[1]}, but the mel "
                             f"encoder has {self.encoder.n_mels} bands (not a mel k-means?)")
        fb = mel_filterbank(self.encoder.n_mels, self.encoder.n_fft, SAMPLE_RATE)
        self.inv_fb = nonneg_pinv(fb)  # (n_freq, n_mels)
        self.n_iter, self.seed = n_iter, seed

    @property
    def hop(self) -> int:
        return self.encoder.hop

    def log_mel(self, units: np.ndarray, durations: np.ndarray | None,
                stats: MelStats | None) -> torch.Tensor:
        """Units (+ durations) -> un-normalised log-mel frames (n_frames, n_mels)."""
        units = np.asarray(units, dtype=np.int64)
        if units.size and (units.min() < 0 or units.max() >= len(self.centroids)):
            raise ValueError(f"unit {int(units.max())} is outside the k-means of "
                             f"{len(self.centroids)} centroids")
        reps = np.ones_like(units) if durations is None else np.asarray(durations, dtype=np.int64)
        frames = self.centroids[torch.as_tensor(np.repeat(units, reps))]
        if self.encoder.normalize == "utterance":
            stats = stats or MelStats.generic(self.encoder.n_mels)
            frames = frames * stats.std + stats.mean
        return frames

    def __call__(self, units: np.ndarray, durations: np.ndarray | None = None,
                 reference: np.ndarray | None = None) -> np.ndarray:
        """Units -> float32 waveform at 16 kHz, ``sum(durations) * 640`` samples long."""
        stats = MelStats.from_wav(reference, self.encoder) if reference is not None else None
        logmel = self.log_mel(units, durations, stats)  # (F, n_mels)
        n = logmel.shape[0]
        if n == 0:
            return np.zeros(0, dtype=np.float32)
        steps = self.hop // GL_HOP
        fine = torch.nn.functional.interpolate(  # (1, n_mels, F * steps)
            logmel.T[None], size=n * steps, mode="linear", align_corners=False)[0]
        power = (fine.exp() - 1e-6).clamp_min(0)  # mel power
        lin = (self.inv_fb @ power).clamp_min(0).sqrt()  # (n_freq, F * steps) magnitude
        lin = torch.cat([lin, lin[:, -1:]], dim=1)  # istft(center) wants frames = len/hop + 1
        wav = griffin_lim(lin, self.encoder.n_fft, GL_HOP, n * self.hop,
                          self.n_iter, seed=self.seed).float()
        peak = float(wav.abs().max())
        if peak > 0.99:
            wav = wav * (0.99 / peak)
        return wav.numpy().astype(np.float32)
