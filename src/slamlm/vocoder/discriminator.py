"""HiFi-GAN's discriminators (multi-period + multi-scale), its LSGAN and feature-matching
losses, and a buffer-held Adam so the discriminator's optimizer state lives in the model's
state dict (saved in every checkpoint, restored bit for bit on resume).

Example:
    >>> d = Discriminator(channels=8)
    >>> outs, feats = d(torch.randn(2, 4000))
    >>> len(outs) == len(feats) == 8          # 5 periods + 3 scales
    True
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

LRELU = 0.1
PERIODS = (2, 3, 5, 7, 11)


def _conv_stack(convs: nn.ModuleList, post: nn.Module, x: torch.Tensor
                ) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Leaky-ReLU conv stack then ``post``: (flattened logits, every layer's output)."""
    feats = []
    for c in convs:
        x = F.leaky_relu(c(x), LRELU)
        feats.append(x)
    x = post(x)
    feats.append(x)
    return x.flatten(1), feats


class PeriodDisc(nn.Module):
    """Folds the waveform into ``period`` columns and runs 2-D convs over (time / period)."""

    def __init__(self, period: int, ch: int):
        super().__init__()
        self.period = period
        chans = [1, ch, 2 * ch, 4 * ch, 4 * ch]
        self.convs = nn.ModuleList(nn.Conv2d(a, b, (5, 1), (3 if i < 3 else 1, 1), padding=(2, 0))
                                   for i, (a, b) in enumerate(zip(chans, chans[1:])))
        self.post = nn.Conv2d(chans[-1], 1, (3, 1), padding=(1, 0))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        b, t = x.shape
        pad = (-t) % self.period
        x = F.pad(x, (0, pad), mode="reflect").view(b, 1, -1, self.period)
        return _conv_stack(self.convs, self.post, x)


class ScaleDisc(nn.Module):
    """Strided grouped 1-D convs over the (average-pooled) waveform."""

    def __init__(self, ch: int):
        super().__init__()
        spec = [(1, ch, 15, 1, 1), (ch, 2 * ch, 41, 4, 4), (2 * ch, 4 * ch, 41, 4, 8),
                (4 * ch, 4 * ch, 41, 4, 8), (4 * ch, 4 * ch, 5, 1, 1)]
        self.convs = nn.ModuleList(nn.Conv1d(a, b, k, s, groups=g, padding=k // 2)
                                   for a, b, k, s, g in spec)
        self.post = nn.Conv1d(4 * ch, 1, 3, padding=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x = x.unsqueeze(1)
        return _conv_stack(self.convs, self.post, x)


class Discriminator(nn.Module):
    """MPD (periods 2, 3, 5, 7, 11) + MSD (3 scales): lists of logits and feature maps."""

    def __init__(self, channels: int = 16):
        super().__init__()
        self.mpd = nn.ModuleList(PeriodDisc(p, channels) for p in PERIODS)
        self.msd = nn.ModuleList(ScaleDisc(channels) for _ in range(3))

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], list[list[torch.Tensor]]]:
        outs, feats = [], []
        for d in self.mpd:
            o, f = d(x)
            outs.append(o)
            feats.append(f)
        y = x
        for i, d in enumerate(self.msd):
            if i:  # each scale halves the rate (HiFi-GAN's AvgPool1d(4, 2, padding=2))
                y = F.avg_pool1d(y.unsqueeze(1), 4, 2, padding=2).squeeze(1)
            o, f = d(y)
            outs.append(o)
            feats.append(f)
        return outs, feats


def d_loss(real: list[torch.Tensor], fake: list[torch.Tensor]) -> torch.Tensor:
    """LSGAN discriminator loss: (1 - D(real))^2 + D(fake)^2, summed over discriminators."""
    return sum(((1 - r) ** 2).mean() + (f ** 2).mean() for r, f in zip(real, fake))


def g_adv_loss(fake: list[torch.Tensor]) -> torch.Tensor:
    return sum(((1 - f) ** 2).mean() for f in fake)


def feature_loss(real: list[list[torch.Tensor]], fake: list[list[torch.Tensor]]) -> torch.Tensor:
    """L1 between discriminator feature maps of real and generated audio (real detached)."""
    return sum(F.l1_loss(b, a.detach()) for ra, fa in zip(real, fake) for a, b in zip(ra, fa))


class BufferAdam(nn.Module):
    """Adam for ``module``'s parameters whose moments and step are buffers of this module.

    Being buffers, they are part of any parent's ``state_dict`` and so of the training
    checkpoint: a resumed run continues the discriminator exactly.
    """

    def __init__(self, module: nn.Module, lr: float, betas: tuple[float, float] = (0.8, 0.99),
                 eps: float = 1e-8):
        super().__init__()
        self.lr, self.betas, self.eps = lr, betas, eps
        self.names = [n for n, _ in module.named_parameters()]
        for n, p in module.named_parameters():
            key = n.replace(".", "__")
            self.register_buffer(f"m__{key}", torch.zeros_like(p))
            self.register_buffer(f"v__{key}", torch.zeros_like(p))
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))

    @torch.no_grad()
    def step(self, params: list[torch.Tensor], grads: list[torch.Tensor]) -> None:
        """One Adam update of ``params`` (in the order of ``module.named_parameters()``)."""
        self.count += 1
        b1, b2 = self.betas
        c1, c2 = 1 - b1 ** float(self.count), 1 - b2 ** float(self.count)
        for n, p, g in zip(self.names, params, grads):
            key = n.replace(".", "__")
            m, v = getattr(self, f"m__{key}"), getattr(self, f"v__{key}")
            m.mul_(b1).add_(g, alpha=1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            p.addcdiv_(m / c1, (v / c2).sqrt_().add_(self.eps), value=-self.lr)
