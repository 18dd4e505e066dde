"""Reconstruction losses of a vocoder: multi-resolution STFT (spectral convergence + log
magnitude) and log-mel L1, computed in fp32; and the duration predictor's loss.

Example:
    >>> x = torch.randn(2, 8000)
    >>> float(mr_stft_loss(x, x)), float(MelLoss()(x, x))
    (0.0, 0.0)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from slamlm.units.encoders import mel_filterbank

RESOLUTIONS = ((512, 128), (1024, 256), (256, 64))  # (n_fft, hop), window = n_fft


def _mag(x: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    win = torch.hann_window(n_fft, device=x.device)
    s = torch.stft(x.float(), n_fft, hop, window=win, return_complex=True)
    return s.abs().clamp(min=1e-5)


def mr_stft_loss(fake: torch.Tensor, real: torch.Tensor,
                 resolutions: tuple[tuple[int, int], ...] = RESOLUTIONS) -> torch.Tensor:
    """Mean over resolutions of spectral convergence + L1 of log magnitudes (per batch)."""
    total = fake.new_zeros((), dtype=torch.float32)
    for n_fft, hop in resolutions:
        mf, mr = _mag(fake, n_fft, hop), _mag(real, n_fft, hop)
        sc = torch.linalg.norm(mr - mf) / torch.linalg.norm(mr).clamp(min=1e-5)
        total = total + sc + F.l1_loss(mf.log(), mr.log())
    return total / len(resolutions)


class MelLoss(nn.Module):
    """L1 between log-mel spectrograms (80 mels, n_fft 1024, hop 256 at 16 kHz)."""

    def __init__(self, sr: int = 16000, n_fft: int = 1024, hop: int = 256, n_mels: int = 80):
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        self.register_buffer("fb", mel_filterbank(n_mels, n_fft, sr), persistent=False)

    def log_mel(self, x: torch.Tensor) -> torch.Tensor:
        return torch.log((self.fb.to(x.device) @ _mag(x, self.n_fft, self.hop) ** 2)
                         .clamp(min=1e-5))

    def forward(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        return F.l1_loss(self.log_mel(fake), self.log_mel(real))


def duration_loss(log_pred: torch.Tensor, durations: torch.Tensor, mask: torch.Tensor
                  ) -> torch.Tensor:
    """MSE between predicted log(1 + d) and the true one, over runs the crop did not cut."""
    target = torch.log1p(durations.float())
    err = (log_pred.float() - target) ** 2 * mask
    return err.sum() / mask.sum().clamp(min=1)
