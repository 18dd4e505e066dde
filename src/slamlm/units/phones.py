"""A phone-posterior encoder learned from synthetic speech: a stand-in for HuBERT offline.

HuBERT's units are good for SpeechLMs because they follow phones and ignore the speaker. No
HuBERT can be downloaded offline, and k-means of log-mel frames follow the voice more than
the phone (``bench/unit_quality.py``: cross-voice word ABX 0.34). espeak-ng, however, says
which phoneme it speaks at every sample (``phones`` in a ``slam synth`` manifest), so a small
convolutional net can learn mel frame -> phone from the very stories the SpeechLM trains on.
Its per-frame phone posteriors are the encoder's features; k-means over them gives units
that name phones, largely whatever the voice.

Framing is the mel encoder's (``mel:80x1024x640:none``: 25 Hz, frame ``i`` centred on sample
``640 i + 320``), standardised with the training frames' mean and variance (stored with the
weights), so one frame depends only on the audio around it and ``n_frames = n_samples // 640``.

Folder written by :func:`train_phone_encoder` (``slam units train-phones``)::

    phone_encoder.safetensors   conv weights + input mean/std
    config.json                 shape, phone inventory, mel framing, held-out frame accuracy

Use it as the encoder ``phones:<folder>`` (``slam units --encoder phones:run/phones``). Its id
is ``phones:<absolute folder>``; unit identities also keep the weights' hash
(``encoder_hash``), checked whenever the encoder is re-created from one. The weight-free mel
inverse (``--vocoder mel``) speaks phone units with each phone's mean mel frame.

Example:
    >>> # train_phone_encoder(PhoneTrainConfig(manifest="synth/stories/manifest.jsonl",
    >>> #                                      out="run/phones"))
    >>> # enc = PhoneEncoder("run/phones"); feats = enc.features([wav])  # (n, n_phones)
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from slamlm.units.mel import SAMPLE_RATE, MelEncoder

log = logging.getLogger(__name__)

WEIGHTS = "phone_encoder.safetensors"
CONFIG = "config.json"
FORMAT = "slamlm-phones-1"
PAUSE = "_"


@dataclass(frozen=True)
class PhoneTrainConfig:
    """Settings of ``slam units train-phones``."""

    manifest: str = ""        # slam synth manifest.jsonl with "phones" (espeak-ng timings)
    out: str = ""             # folder for the encoder
    hidden: int = 192         # conv channels
    layers: int = 3           # conv layers after the input one (residual)
    kernel: int = 5           # frames per conv (receptive field: 1 + (layers+1)(kernel-1))
    budget_s: float = 60.0    # training seconds at most (also stops after `epochs`)
    epochs: int = 8
    batch: int = 16           # utterances per step
    lr: float = 3e-3
    holdout: float = 0.05     # share of utterances held out for the frame accuracy
    max_items: int = 0        # 0: every utterance of the manifest
    seed: int = 0
    threads: int = 0          # torch CPU threads (0: auto)


class PhoneNet(nn.Module):
    """Mel frames (B, T, n_mels) -> phone logits (B, T, n_phones); convolutions over time
    with zero padding, so a frame sees ``kernel // 2 * (layers + 1)`` frames either side."""

    def __init__(self, n_mels: int, n_phones: int, hidden: int, layers: int, kernel: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_mels))
        self.register_buffer("std", torch.ones(n_mels))
        # mean un-normalised log-mel frame of each phone (all voices): what the mel inverse
        # speaks for a unit (its centroid's posteriors times these; see unit_log_mels)
        self.register_buffer("phone_mels", torch.zeros(n_phones, n_mels))
        self.inp = nn.Conv1d(n_mels, hidden, kernel, padding=kernel // 2)
        self.convs = nn.ModuleList(
            nn.Conv1d(hidden, hidden, kernel, padding=kernel // 2) for _ in range(layers))
        self.norms = nn.ModuleList(nn.GroupNorm(1, hidden) for _ in range(layers))
        self.out = nn.Conv1d(hidden, n_phones, 1)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = ((mel - self.mean) / self.std).transpose(1, 2)
        h = torch.nn.functional.gelu(self.inp(x))
        for conv, norm in zip(self.convs, self.norms):
            h = h + torch.nn.functional.gelu(conv(norm(h)))
        return self.out(h).transpose(1, 2)


def frame_labels(phones: list[list], n_frames: int, index: dict[str, int],
                 hop: int = 640) -> np.ndarray:
    """Phone id at each frame centre (``hop * i + hop / 2`` samples); pause outside spans.

    Example:
        >>> frame_labels([["k", 0.0, 0.05], ["a", 0.05, 0.1]], 3, {"_": 0, "k": 1, "a": 2})
        array([1, 2, 0])
    """
    centres = (np.arange(n_frames) * hop + hop / 2) / SAMPLE_RATE
    out = np.full(n_frames, index[PAUSE], np.int64)
    for name, s, e in phones:
        out[(centres >= s) & (centres < e)] = index.get(name, index[PAUSE])
    return out


def _read_manifest(path: Path, max_items: int) -> list[dict]:
    from slamlm.io import read_jsonl

    recs = [r for r in read_jsonl(path) if "error" not in r]
    if not recs:
        raise ValueError(f"{path}: no utterances")
    missing = [r.get("id", "?") for r in recs if not r.get("phones")]
    if missing:
        raise ValueError(f"{path}: {len(missing)} of {len(recs)} records have no 'phones' "
                         f"(first: {missing[0]}); only espeak-ng manifests from this version of "
                         f"slam synth time phones - re-run slam synth into a new folder")
    return recs[:max_items] if max_items else recs


def _load_data(cfg: PhoneTrainConfig, mel: MelEncoder):
    from slamlm.audio import load_audio

    path = Path(cfg.manifest)
    recs = _read_manifest(path, cfg.max_items)
    inventory = sorted({p[0] for r in recs for p in r["phones"]} | {PAUSE})
    index = {p: i for i, p in enumerate(inventory)}
    feats, labels = [], []
    for r in recs:
        wav = load_audio(path.parent / r["path"])
        f = mel.features([wav])[0]
        feats.append(f)
        labels.append(torch.from_numpy(frame_labels(r["phones"], len(f), index, mel.hop)))
    return inventory, feats, labels


def _batches(order: list[int], feats, labels, batch: int):
    for i in range(0, len(order), batch):
        idx = order[i:i + batch]
        t = max(len(feats[j]) for j in idx)
        x = torch.zeros(len(idx), t, feats[idx[0]].shape[1])
        y = torch.full((len(idx), t), -100, dtype=torch.long)
        for b, j in enumerate(idx):
            x[b, :len(feats[j])] = feats[j]
            y[b, :len(labels[j])] = labels[j]
        yield x, y


@torch.no_grad()
def _accuracy(net: PhoneNet, idx: list[int], feats, labels) -> float:
    net.eval()
    right = total = 0
    for x, y in _batches(idx, feats, labels, 16):
        pred = net(x).argmax(-1)
        keep = y != -100
        right += int((pred[keep] == y[keep]).sum())
        total += int(keep.sum())
    net.train()
    return right / max(total, 1)


def train_phone_encoder(cfg: PhoneTrainConfig) -> Path:
    """Train a :class:`PhoneNet` on a manifest's phone timings; write ``cfg.out`` atomically.
    A folder that already holds an encoder trained with the same settings is kept as it is."""
    from safetensors.torch import save_file

    from slamlm.device import set_cpu_threads
    from slamlm.io import atomic_dir

    if not cfg.manifest or not cfg.out:
        raise ValueError("slam units train-phones needs --manifest and --out")
    out = Path(cfg.out)
    settings = {k: v for k, v in asdict(cfg).items() if k not in ("out", "threads")}
    if (out / CONFIG).is_file() and (out / WEIGHTS).is_file():
        old = json.loads((out / CONFIG).read_text())
        if old.get("trained_with") == settings:
            log.info("phone encoder %s already trained with these settings: kept", out)
            return out
        raise FileExistsError(f"{out} holds a phone encoder trained with other settings: "
                              f"pass a new --out")
    set_cpu_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    mel = MelEncoder(normalize="none")
    t0 = time.perf_counter()
    inventory, feats, labels = _load_data(cfg, mel)
    rng = random.Random(cfg.seed)
    ids = list(range(len(feats)))
    rng.shuffle(ids)
    n_hold = max(1, int(len(ids) * cfg.holdout)) if len(ids) > 1 else 0
    held, train = ids[:n_hold], ids[n_hold:] or ids
    net = PhoneNet(mel.dim, len(inventory), cfg.hidden, cfg.layers, cfg.kernel)
    allf = torch.cat([feats[i] for i in train])
    net.mean.copy_(allf.mean(0))
    net.std.copy_(allf.std(0) + 1e-5)
    ally = torch.cat([labels[i] for i in train])
    sums = torch.zeros(len(inventory), mel.dim).index_add_(0, ally, allf)
    counts = torch.bincount(ally, minlength=len(inventory))[:, None]  # 0: only in held-out
    net.phone_mels.copy_(torch.where(counts > 0, sums / counts.clamp(min=1), allf.mean(0)))
    del allf, ally
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=0.01)
    budget = cfg.budget_s
    steps_per_epoch = math.ceil(len(train) / cfg.batch)
    total = steps_per_epoch * cfg.epochs
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=total, pct_start=0.1)
    t_train, step, epoch, loss = time.perf_counter(), 0, 0, float("nan")
    while epoch < cfg.epochs and time.perf_counter() - t_train < budget:
        rng.shuffle(train)
        for x, y in _batches(train, feats, labels, cfg.batch):
            loss_t = nn.functional.cross_entropy(net(x).flatten(0, 1), y.flatten())
            opt.zero_grad(set_to_none=True)
            loss_t.backward()
            opt.step()
            sched.step()
            step, loss = step + 1, loss_t.item()
            if time.perf_counter() - t_train >= budget:
                break
        epoch += 1
        log.info("phones: epoch %d, step %d/%d, loss %.3f", epoch, step, total, loss)
    acc = _accuracy(net, held, feats, labels) if held else float("nan")
    log.info("phone encoder: %d phones, %d utterances, %d steps in %.0f s; held-out frame "
             "accuracy %.3f (%d utterances)", len(inventory), len(train), step,
             time.perf_counter() - t_train, acc, len(held))
    meta = {"format": FORMAT, "n_mels": mel.n_mels, "n_fft": mel.n_fft, "hop": mel.hop,
            "hidden": cfg.hidden, "layers": cfg.layers, "kernel": cfg.kernel,
            "phones": inventory, "heldout_frame_accuracy": round(acc, 4),
            "heldout_utterances": len(held), "train_utterances": len(train), "steps": step,
            "seconds": round(time.perf_counter() - t0, 1), "trained_with": settings}
    with atomic_dir(out) as tmp:
        save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(tmp / WEIGHTS))
        (tmp / CONFIG).write_text(json.dumps(meta, indent=2))
    return out


class PhoneEncoder:
    """``phones:<folder>``: per-frame phone posteriors (dim = number of phones) at 25 Hz."""

    def __init__(self, folder: str | Path, device: str | torch.device = "cpu",
                 min_seconds: float = 0.1):
        from safetensors.torch import load_file

        folder = Path(folder)
        cfg_path, w_path = folder / CONFIG, folder / WEIGHTS
        if not cfg_path.is_file() or not w_path.is_file():
            raise FileNotFoundError(f"phones:{folder}: no {CONFIG} + {WEIGHTS} there (train one: "
                                    f"slam units train-phones --manifest M --out {folder})")
        meta = json.loads(cfg_path.read_text())
        if meta.get("format") != FORMAT:
            raise ValueError(f"{cfg_path}: format {meta.get('format')!r}, expected {FORMAT!r}")
        self.meta = meta
        self.phones: list[str] = list(meta["phones"])
        self.device = torch.device(device)
        self.mel = MelEncoder(meta["n_mels"], meta["n_fft"], meta["hop"], "none", device=device)
        self.net = PhoneNet(meta["n_mels"], len(self.phones), meta["hidden"], meta["layers"],
                            meta["kernel"])
        state = load_file(str(w_path))
        self.net.load_state_dict(state)
        self.net.to(self.device).eval()
        self.id = f"phones:{folder.resolve()}"
        self.weights_hash = weights_hash(folder)
        self.layer = 0
        self.min_seconds = min_seconds

    @property
    def dim(self) -> int:
        return len(self.phones)

    def unit_log_mels(self, centroids: torch.Tensor) -> torch.Tensor:
        """k-means centroids over posteriors (k, n_phones) -> a log-mel frame per unit (k,
        n_mels): the phones' mean frames weighted by the centroid (for the mel inverse)."""
        w = torch.as_tensor(centroids, dtype=torch.float32).clamp(min=0)
        w = w / w.sum(1, keepdim=True).clamp(min=1e-6)
        return w @ self.net.phone_mels.float().cpu()

    def n_frames(self, n_samples: int) -> int:
        return self.mel.n_frames(n_samples)

    @torch.no_grad()
    def features(self, wavs: list[np.ndarray]) -> list[torch.Tensor]:
        """(T_i,) float32 arrays -> list of (n_frames_i, n_phones) posteriors (each utterance
        on its own, so a file's features do not depend on the batch)."""
        out = []
        for f in self.mel.features(wavs):
            if not len(f):
                out.append(torch.zeros(0, self.dim))
                continue
            out.append(torch.softmax(self.net(f[None].to(self.device))[0].float(), -1))
        return out


def weights_hash(folder: str | Path) -> str:
    """First 16 hex of the weights' sha256: stored in unit identities beside the encoder id, so
    units are never mixed with a retrained encoder of the same folder."""
    path = Path(folder) / WEIGHTS
    if not path.is_file():
        raise FileNotFoundError(f"phones:{folder}: no {WEIGHTS} there (train one: slam units "
                                f"train-phones --manifest M --out {folder})")
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]

