"""``slam vocoder train``: fit a unit-to-speech vocoder on a units folder with the one loop.

units folder -> (units, audio) pairs (a few held out) -> random frame-aligned crops ->
generator (``hifigan`` or ``istft``) -> mel L1 + multi-resolution STFT + duration loss
(+ optional MPD/MSD adversarial and feature-matching losses; the discriminator and its
buffer-held Adam live inside the model, so checkpoints and exact resume cover them) ->
:func:`slamlm.train.loop.fit` (AdamW, schedule, budget, checkpoints, resume, torchrun).
At the end the generator is exported in textlesslib's layout: ``OUT/g_XXXXXXXX``
(``{"generator": state}`` with weight-norm ``weight_g``/``weight_v``) + ``OUT/config.json``,
which ``--vocoder hifigan:OUT`` loads.

With ``--speaker-embedding resemblyzer`` the generator is speaker-conditioned (textlesslib's
d-vector ``CodeGenerator``): each utterance's embedding, computed once from its audio and
cached in ``OUT/speakers.npz``, goes with its crops; ``slam generate --speaker-wav`` then
names the voice.

Example:
    >>> # run_vocoder(build_config(VocoderConfig, base={"units": "run/units", "out": "run/voc",
    >>> #                                               "schedule": {"budget": "10m"}}))
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from slamlm.config import ConfigError
from slamlm.generate.hifigan import save_code_hifigan
from slamlm.train.config import DistConfig, OptimConfig, ScheduleConfig, TrainConfig, micro_size
from slamlm.train.distributed import DistInfo
from slamlm.train.loop import fit
from slamlm.train.objective import StepBatch
from slamlm.vocoder.data import CropBatch, PairSet, crop_batch, load_pairs
from slamlm.vocoder.discriminator import d_loss, feature_loss, g_adv_loss
from slamlm.vocoder.losses import MelLoss, duration_loss, mr_stft_loss
from slamlm.vocoder.model import VocoderModel, VocoderSpec, generator_config

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VocoderConfig:
    """``slam vocoder train`` settings (the loop sections are the ones every trainer has)."""

    units: str = ""  # units folder (slam units extract): records with path, units, durations
    out: str = ""  # run folder: ckpt/, metrics.jsonl, and the exported g_XXXXXXXX + config.json
    arch: Literal["istft", "hifigan"] = "istft"  # istft: light Vocos-style; hifigan: textlesslib
    channels: int = 0  # width (0: arch default: istft 192, hifigan upsample_initial_channel 128)
    layers: int = 6  # istft: ConvNeXt blocks
    segment: float = 0.8  # seconds per training crop (rounded to whole unit frames)
    hop: int = 0  # samples per unit frame at 16 kHz (0: from the records; 640 = 25 Hz units)
    heldout: int = 8  # utterances kept out of training (validation mel L1, bench)
    max_items: int = 0  # read at most this many records (0: all)
    mel_weight: float = 1.0  # log-mel L1
    stft_weight: float = 1.0  # multi-resolution STFT (spectral convergence + log magnitude)
    dur_weight: float = 1.0  # duration predictor MSE on log(1 + duration)
    gan: bool = False  # add HiFi-GAN's MPD + MSD discriminators (adversarial + feature matching)
    gan_channels: int = 16  # discriminator width
    gan_start: int = 0  # steps of reconstruction-only training before the discriminator joins
    d_lr: float = 2e-4  # discriminator Adam learning rate (betas 0.8, 0.99)
    adv_weight: float = 1.0
    fm_weight: float = 2.0  # feature matching
    speaker_embedding: Literal["none", "resemblyzer"] = "none"  # per-utterance speaker d-vector input
    device: str = "auto"
    threads: int = 0  # torch CPU threads (0: leave as is)
    resume: str = "auto"  # auto (newest complete ckpt/step_*), none, or a step folder
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        batch_size=8, micro_batch=0, precision="fp32", eval_windows=4))
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(
        lr=1e-3, min_lr=1e-4, betas=(0.8, 0.99), clip=1.0))
    schedule: ScheduleConfig = field(default_factory=lambda: ScheduleConfig(
        max_steps=20000, warmup=0.0, warmup_steps=50, decay="cosine", log_every=10,
        eval_every=500, ckpt_every=500, keep_last=2))
    dist: DistConfig = field(default_factory=DistConfig)

    def __post_init__(self) -> None:
        if not 0.1 <= self.segment <= 10:
            raise ConfigError(f"vocoder: segment is seconds in [0.1, 10], got {self.segment}")
        if self.heldout < 0 or self.channels < 0 or self.layers < 1 or self.gan_channels < 1:
            raise ConfigError("vocoder: heldout/channels must be >= 0, layers/gan_channels >= 1")


class VocoderObjective:
    """Vocoder training as an objective of :func:`slamlm.train.loop.fit`."""

    name = "vocoder"

    def __init__(self, cfg: VocoderConfig, data: PairSet | None = None):
        self.cfg = cfg
        self.data = data
        self.step = 0  # global batches drawn (the data position)

    def build(self, info: DistInfo, resume: Path | None) -> tuple[torch.nn.Module, dict[str, Any]]:
        cfg = self.cfg
        self.info = info
        if self.data is None:
            self.data = load_pairs(cfg.units, cfg.heldout, cfg.hop, cfg.max_items)
        d = self.data
        self.frames = max(1, round(cfg.segment * 16000 / d.hop))
        embedder = None
        if cfg.speaker_embedding != "none":
            from slamlm.vocoder.speakers import attach_speakers

            embedder = attach_speakers(d, cfg.speaker_embedding, Path(cfg.out) / "speakers.npz")
        spec = VocoderSpec(cfg.arch, generator_config(cfg.arch, d.n_units, d.hop, cfg.channels,
                                                      cfg.layers, embedder),
                           gan_channels=cfg.gan_channels if cfg.gan else 0, d_lr=cfg.d_lr)
        model = VocoderModel(spec)
        if resume:
            from safetensors.torch import load_file

            model.load_state_dict(load_file(str(resume / "model.safetensors")), strict=True)
        self.model = model.to(info.device).train()
        self.mel = MelLoss().to(info.device)
        log.info("vocoder %s: %d train / %d held-out utterances, hop %d, %d units, crops of %d "
                 "frames", cfg.arch, len(d.train), len(d.heldout), d.hop, d.n_units, self.frames)
        meta = {"units": d.identity, "vocoder": {"units": str(cfg.units), "arch": cfg.arch,
                                                 "hop": d.hop, "speaker": embedder}}
        return self.model, meta

    def max_steps(self, configured: int) -> int:
        return configured

    def next_batch(self) -> StepBatch:
        t, info, d = self.cfg.train, self.info, self.data
        b = crop_batch(d.train, self.step, t.batch_size, self.frames, d.hop, t.seed,
                       part=(info.rank, info.world))
        self.step += 1
        m = micro_size(t, info.world)
        n = b.frames.shape[0]
        micros = [b.map(lambda x, j=j: x[j:j + m]) for j in range(0, n, m)]
        return StepBatch(micros, t.batch_size, t.batch_size * b.frames.shape[1])

    def _to(self, mb: CropBatch) -> CropBatch:
        dev = self.info.device
        return mb.map(lambda x: x.to(dev))

    def _spkr(self, spkr: torch.Tensor | None) -> torch.Tensor | None:
        """The speaker embeddings when the generator takes them (pairs may carry unused ones)."""
        return spkr if self.model.generator.spkr is not None else None

    def loss(self, model: torch.nn.Module, micro: CropBatch) -> tuple[torch.Tensor, dict]:
        cfg = self.cfg
        mb = self._to(micro)
        n = mb.frames.shape[0]
        wav, logdur = model(mb.frames, mb.units, self._spkr(mb.spkr))
        with torch.autocast(mb.wav.device.type, enabled=False):
            wav = wav.float()
            mel = self.mel(wav, mb.wav)
            stft = mr_stft_loss(wav, mb.wav)
            dur = duration_loss(logdur, mb.durations, mb.dur_mask)
            total = cfg.mel_weight * mel + cfg.stft_weight * stft + cfg.dur_weight * dur
            parts = {"mel_l1": mel.detach() * n, "mr_stft": stft.detach() * n,
                     "dur_mse": dur.detach() * n}
            if self.model.discriminator is not None and self.step > cfg.gan_start:
                adv, fm, dl = self._gan(wav, mb.wav)
                total = total + cfg.adv_weight * adv + cfg.fm_weight * fm
                parts.update(g_adv=adv.detach() * n, fm=fm.detach() * n, d_loss=dl * n)
        return total * n, parts

    def _gan(self, fake: torch.Tensor, real: torch.Tensor
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One discriminator update (its own Adam; grads all-reduced by hand under torchrun),
        then the generator's adversarial + feature losses through the updated, frozen D."""
        disc, info = self.model.discriminator, self.info
        params = list(disc.parameters())
        r_out, _ = disc(real)
        f_out, _ = disc(fake.detach())
        dl = d_loss(r_out, f_out)
        grads = torch.autograd.grad(dl, params)
        if info.world > 1:
            flat = torch.cat([g.reshape(-1) for g in grads])
            torch.distributed.all_reduce(flat)
            flat /= info.world
            grads = list(torch.split(flat, [g.numel() for g in grads]))
            grads = [g.view_as(p) for g, p in zip(grads, params)]
        self.model.d_opt.step(params, grads)
        frozen = {k: v.detach() for k, v in disc.named_parameters()}
        f_out, f_feat = torch.func.functional_call(disc, frozen, (fake,))
        with torch.no_grad():
            _, r_feat = disc(real)
        return g_adv_loss(f_out), feature_loss(r_feat, f_feat), dl.detach()

    @torch.no_grad()
    def evaluate(self, model: torch.nn.Module) -> dict[str, float]:
        """Log-mel L1 of whole held-out utterances (first ``train.eval_windows``, 4 s each)."""
        held = self.data.heldout[: self.cfg.train.eval_windows or None]
        if not held:
            return {}
        gen, hop, dev = self.model.generator, self.data.hop, self.info.device
        gen.eval()
        vals = []
        for p in held:
            f = p.frames[: 4 * 16000 // hop]
            spkr = None if p.spkr is None else torch.as_tensor(p.spkr, device=dev)[None]
            wav = gen(torch.as_tensor(f, device=dev)[None], spkr=self._spkr(spkr)).float()
            vals.append(float(self.mel(wav, torch.as_tensor(p.wav[: len(f) * hop], device=dev)[None])))
        gen.train()
        return {"val_mel_l1": round(float(np.mean(vals)), 5)}

    def data_state(self) -> dict[str, Any]:
        return {"step": self.step}

    def load_data_state(self, state: dict[str, Any]) -> None:
        self.step = int(state.get("step", 0))

    def checkpoint_meta(self, meta: dict[str, Any], step: int, tokens: int) -> dict[str, Any]:
        return {**meta, "vocoder": {**meta["vocoder"], "step": step}}


def export_generator(ckpt: Path, out: Path) -> Path:
    """Training checkpoint -> ``out/g_XXXXXXXX`` + ``out/config.json`` (textlesslib layout)."""
    import json

    from safetensors.torch import load_file

    meta = json.loads((ckpt / "config.json").read_text())
    spec = VocoderSpec(**meta["model"])
    model = VocoderModel(spec)
    model.load_state_dict(load_file(str(ckpt / "model.safetensors")), strict=True)
    step = int(meta.get("vocoder", {}).get("step", 0))
    return save_code_hifigan(model.generator.eval(), out, step)


def run_vocoder(cfg: VocoderConfig, data: PairSet | None = None) -> Path:
    """Train (or resume) and export; returns the exported ``g_XXXXXXXX`` file."""
    for name in ("units", "out"):
        if not getattr(cfg, name) and not (name == "units" and data is not None):
            raise ValueError(f"slam vocoder train: --{name} is required")
    cfg.schedule.check_ends()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.train.seed)
    last = fit(cfg, VocoderObjective(cfg, data))
    out = Path(cfg.out)
    if int(os.environ.get("RANK", "0")) == 0:
        g = export_generator(last, out)
        log.info("vocoder exported: %s (load with --vocoder hifigan:%s)", g, out)
        return g
    return last
