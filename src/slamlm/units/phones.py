"""A phone-posterior encoder learned from synthetic speech: a stand-in for HuBERT offline.

HuBERT's units are good for SpeechLMs because they follow phones and ignore the speaker. No
HuBERT can be downloaded offline, and k-means of log-mel frames follow the voice more than
the phone (``bench/unit_quality.py``: cross-voice word ABX 0.34). espeak-ng, however, says
which phoneme it speaks at every sample (``phones`` in a ``slam synth`` manifest), so a small
convolutional net can learn mel frame -> phone from the very stories the SpeechLM trains on.
Its per-frame phone posteriors are the encoder's features; k-means over them gives units
that name phones, largely whatever the voice.

Units that ignore the voice entirely cannot pass SALMon's speaker and gender consistency
tests, which HuBERT's units partly do (they keep some speaker information). With
``voice="gender"`` a second 1x1 head on the same convolutions learns the speaker's gender
(the class of each record's espeak-ng ``voice``, speech frames only); its centred posteriors,
times ``voice_weight`` and the frame's speech probability, are appended to the phone
posteriors. k-means then splits a phone's units by gender where the voice is clear, while
pauses stay shared.

Framing is the mel encoder's (``mel:80x1024x640:none``: 25 Hz, frame ``i`` centred on sample
``640 i + 320``), standardised with the training frames' mean and variance (stored with the
weights), so one frame depends only on the audio around it and ``n_frames = n_samples // 640``.

Folder written by :func:`train_phone_encoder` (``slam units train-phones``)::

    phone_encoder.safetensors   conv weights (+ the voice head) + input mean/std
    config.json                 shape, phone inventory, voice classes and weight, mel framing,
                                held-out frame accuracy (phones, voice)

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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from slamlm import schedule
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
    hop: int = 640            # samples per frame at 16 kHz (640: 25 Hz as mHuBERT-25Hz; 320: 50 Hz)
    hidden: int = 192         # conv channels
    layers: int = 3           # conv layers after the input one (residual)
    kernel: int = 5           # frames per conv (receptive field: 1 + (layers+1)(kernel-1))
    budget_s: float = 60.0    # training seconds at most (0: no limit; also stops after `epochs`)
    epochs: int = 8
    # optimizer steps (0: as many as `epochs` and `budget_s` allow); with budget_s=0 the
    # encoder is the same on any machine (a time budget gives a slow or busy one fewer steps)
    steps: int = 0
    batch: int = 16           # utterances per step
    crop: int = 300           # frames of each utterance per step, at a random offset (0: whole
    # utterances, padded to the longest of the batch); 300 frames = 12 s
    lr: float = 3e-3          # peak: linear warm-up over the first 10% of training, then cosine
    holdout: float = 0.05     # share of utterances held out for the frame accuracy
    max_items: int = 0        # 0: every utterance of the manifest
    seed: int = 0
    threads: int = 0          # torch CPU threads (0: auto)
    # "gender": a second head learns the speaker's gender (from each record's espeak-ng voice)
    # and its posteriors join the features, weighted by voice_weight, so k-means units keep
    # some voice, as HuBERT's do (what SALMon's consistency tests ask of units); "none": the
    # features are the phone posteriors only, and units ignore the voice.
    voice: str = "none"
    voice_weight: float = 1.0


class PhoneNet(nn.Module):
    """Mel frames (B, T, n_mels) -> phone logits (B, T, n_phones); convolutions over time
    with zero padding, so a frame sees ``kernel // 2 * (layers + 1)`` frames either side."""

    def __init__(self, n_mels: int, n_phones: int, hidden: int, layers: int, kernel: int,
                 n_voices: int = 0):
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
        self.voice_out = nn.Conv1d(hidden, n_voices, 1) if n_voices else None
        if n_voices:  # mean frame of each phone in each voice class (a gendered mel inverse)
            self.register_buffer("voice_mels", torch.zeros(n_voices, n_phones, n_mels))

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.heads(mel)[0]

    def heads(self, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(phone logits (B, T, n_phones), voice logits (B, T, n_voices) or None)."""
        x = ((mel - self.mean) / self.std).transpose(1, 2)
        h = torch.nn.functional.gelu(self.inp(x))
        for conv, norm in zip(self.convs, self.norms):
            h = h + torch.nn.functional.gelu(conv(norm(h)))
        voice = self.voice_out(h).transpose(1, 2) if self.voice_out is not None else None
        return self.out(h).transpose(1, 2), voice


def frame_labels(phones: list[list], n_frames: int, index: dict[str, int],
                 hop: int = 640) -> np.ndarray:
    """Phone id at each frame centre (``hop * i + hop / 2`` samples); pause outside spans.

    Example:
        >>> frame_labels([["k", 0.0, 0.05], ["a", 0.05, 0.1]], 3, {"_": 0, "k": 1, "a": 2})
        array([1, 2, 0])
    """
    centres = (np.arange(n_frames) * hop + hop / 2) / SAMPLE_RATE
    out = np.full(n_frames, index[PAUSE], np.int64)
    if not phones:
        return out
    # the frames with s <= centre < e are one slice of the sorted centres (a later span
    # overwrites an earlier one where they overlap, as in order)
    bounds = np.searchsorted(centres, np.asarray([[p[1], p[2]] for p in phones], np.float64))
    for (name, _, _), (lo, hi) in zip(phones, bounds):
        out[lo:hi] = index.get(name, index[PAUSE])
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


VOICE_KINDS = ("none", "gender")


def voice_label(rec: dict, kind: str) -> str:
    """The class a record's speaker has under ``kind`` (``"gender"``: ``"m"``/``"f"`` of its
    espeak-ng ``voice``).

    Example:
        >>> voice_label({"voice": "en-us+f3"}, "gender"), voice_label({"voice": "en"}, "gender")
        ('f', 'm')
    """
    from slamlm.synth.tts import voice_gender

    if kind != "gender":
        raise ValueError(f"voice={kind!r}: expected one of {', '.join(VOICE_KINDS)}")
    voice = rec.get("voice")
    if not isinstance(voice, str) or not voice:
        raise ValueError(f"record {rec.get('id', '?')}: voice={kind} needs its espeak-ng "
                         f"'voice' (as slam synth writes it), found {voice!r}")
    return voice_gender(voice)


def _load_data(cfg: PhoneTrainConfig, mel: MelEncoder):
    """(phone inventory, voice classes, mel frames, phone labels, voice labels) per utterance;
    voice labels are -100 (ignored) at pauses and everywhere when ``cfg.voice == "none"``."""
    from slamlm.audio import load_audio

    if cfg.voice not in VOICE_KINDS:
        raise ValueError(f"voice={cfg.voice!r}: expected one of {', '.join(VOICE_KINDS)}")
    path = Path(cfg.manifest)
    recs = _read_manifest(path, cfg.max_items)
    inventory = sorted({p[0] for r in recs for p in r["phones"]} | {PAUSE})
    index = {p: i for i, p in enumerate(inventory)}
    speakers = [voice_label(r, cfg.voice) for r in recs] if cfg.voice != "none" else []
    classes = sorted(set(speakers))
    if cfg.voice != "none" and len(classes) < 2:
        raise ValueError(f"{path}: voice={cfg.voice} needs speakers of at least two classes; "
                         f"every record is {classes[0]!r}")
    def mels(r: dict) -> torch.Tensor:
        return mel.features([load_audio(path.parent / r["path"])])[0]

    # decoding and the STFT release the GIL: 2 threads read the demo's 1200 stories ~1.8x
    # faster than 1 (results in manifest order)
    with ThreadPoolExecutor(max(1, min(2, torch.get_num_threads()))) as pool:
        all_feats = list(pool.map(mels, recs))
    feats, labels, voices = [], [], []
    for i, (r, f) in enumerate(zip(recs, all_feats)):
        y = torch.from_numpy(frame_labels(r["phones"], len(f), index, mel.hop))
        v = torch.full_like(y, -100)
        if classes:
            v[y != index[PAUSE]] = classes.index(speakers[i])
        feats.append(f)
        labels.append(y)
        voices.append(v)
    return inventory, classes, feats, labels, voices


def _batches(order: list[int], feats, labels, batch: int, voices=None, crop: int = 0,
             rng: random.Random | None = None):
    """(mel, phone labels, voice labels) batches over ``order``, zero / -100 padded; with
    ``crop`` > 0 each utterance gives one random ``crop``-frame window (less padding)."""
    for i in range(0, len(order), batch):
        idx = order[i:i + batch]
        spans = []
        for j in idx:
            n = len(feats[j])
            start = rng.randrange(n - crop + 1) if crop and rng and n > crop else 0
            spans.append((j, start, min(n, start + crop) if crop else n))
        t = max(end - start for _, start, end in spans)
        x = torch.zeros(len(idx), t, feats[idx[0]].shape[1])
        y = torch.full((len(idx), t), -100, dtype=torch.long)
        v = torch.full((len(idx), t), -100, dtype=torch.long)
        for b, (j, start, end) in enumerate(spans):
            x[b, :end - start] = feats[j][start:end]
            y[b, :end - start] = labels[j][start:end]
            if voices is not None:
                v[b, :end - start] = voices[j][start:end]
        yield x, y, v


def lr_factor(progress: float, warmup: float = 0.1) -> float:
    """Share of the peak learning rate at ``progress`` (0..1) of training: the training loop's
    schedule (:func:`slamlm.schedule.lr_at`: linear warm-up over ``warmup``, cosine to 0),
    except that the warm-up starts at 1/25, not 0, so the first step is not wasted.

    Example:
        >>> lr_factor(0.0), lr_factor(0.1), round(lr_factor(0.55), 2), lr_factor(1.0)
        (0.04, 1.0, 0.5, 0.0)
    """
    share = schedule.lr_at(min(max(progress, 0.0), 1.0), 1.0, 0.0, warmup)
    return 0.04 + 0.96 * share if progress < warmup else share


@torch.no_grad()
def _accuracy(net: PhoneNet, idx: list[int], feats, labels, voices) -> tuple[float, float]:
    """Held-out frame accuracy of the phone head and of the voice head (nan without one)."""
    net.eval()
    right = total = v_right = v_total = 0
    for x, y, v in _batches(idx, feats, labels, 16, voices):
        phone, voice = net.heads(x)
        keep = y != -100
        right += int((phone.argmax(-1)[keep] == y[keep]).sum())
        total += int(keep.sum())
        if voice is not None:
            keep = v != -100
            v_right += int((voice.argmax(-1)[keep] == v[keep]).sum())
            v_total += int(keep.sum())
    net.train()
    return right / max(total, 1), (v_right / v_total if v_total else float("nan"))


def _same_training(old: dict | None, new: dict) -> bool:
    """Whether an encoder trained with ``old`` settings is the one ``new`` asks for: equal
    settings, the manifest compared by content (by path for encoders saved before
    ``manifest_sha1`` was recorded)."""
    if not isinstance(old, dict):
        return False
    if "manifest_sha1" not in old:
        return old == {k: v for k, v in new.items() if k != "manifest_sha1"}
    drop = ("manifest",)
    return ({k: v for k, v in old.items() if k not in drop}
            == {k: v for k, v in new.items() if k not in drop})


def train_phone_encoder(cfg: PhoneTrainConfig) -> Path:
    """Train a :class:`PhoneNet` on a manifest's phone timings; write ``cfg.out`` atomically.
    A folder that already holds an encoder trained with the same settings is kept as it is."""
    from safetensors.torch import save_file

    from slamlm.device import set_cpu_threads
    from slamlm.io import atomic_dir, file_sha1

    if not cfg.manifest or not cfg.out:
        raise ValueError("slam units train-phones needs --manifest and --out")
    out = Path(cfg.out)
    settings = {k: v for k, v in asdict(cfg).items() if k not in ("out", "threads")}
    if not Path(cfg.manifest).is_file():
        raise FileNotFoundError(f"{cfg.manifest}: no such manifest (slam synth stories writes one)")
    # the manifest by content: a run folder moved or re-run from elsewhere keeps its encoder
    settings["manifest_sha1"] = file_sha1(cfg.manifest)
    if (out / CONFIG).is_file() and (out / WEIGHTS).is_file():
        old = json.loads((out / CONFIG).read_text())
        if _same_training(old.get("trained_with"), settings):
            log.info("phone encoder %s already trained with these settings: kept", out)
            return out
        raise FileExistsError(f"{out} holds a phone encoder trained with other settings: "
                              f"pass a new --out")
    set_cpu_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    mel = MelEncoder(hop=cfg.hop, normalize="none")
    t0 = time.perf_counter()
    inventory, classes, feats, labels, voices = _load_data(cfg, mel)
    rng = random.Random(cfg.seed)
    ids = list(range(len(feats)))
    rng.shuffle(ids)
    n_hold = max(1, int(len(ids) * cfg.holdout)) if len(ids) > 1 else 0
    held, train = ids[:n_hold], ids[n_hold:] or ids
    net = PhoneNet(mel.dim, len(inventory), cfg.hidden, cfg.layers, cfg.kernel, len(classes))
    allf = torch.cat([feats[i] for i in train])
    net.mean.copy_(allf.mean(0))
    net.std.copy_(allf.std(0) + 1e-5)
    ally = torch.cat([labels[i] for i in train])
    sums = torch.zeros(len(inventory), mel.dim).index_add_(0, ally, allf)
    counts = torch.bincount(ally, minlength=len(inventory))[:, None]  # 0: only in held-out
    net.phone_mels.copy_(torch.where(counts > 0, sums / counts.clamp(min=1), allf.mean(0)))
    if classes:  # per voice class; a phone a class never says falls back to the all-voice mean
        allv = torch.cat([voices[i] for i in train])
        for c in range(len(classes)):
            sel = allv == c
            s_c = torch.zeros_like(sums).index_add_(0, ally[sel], allf[sel])
            n_c = torch.bincount(ally[sel], minlength=len(inventory))[:, None]
            net.voice_mels[c].copy_(torch.where(n_c > 0, s_c / n_c.clamp(min=1), net.phone_mels))
        del allv
    del allf, ally
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=0.01)
    budget = cfg.budget_s
    total = math.ceil(len(train) / cfg.batch) * cfg.epochs
    if cfg.steps > 0:
        total = min(total, cfg.steps)
    t_train, step, epoch, loss = time.perf_counter(), 0, 0, float("nan")

    def done() -> float:  # progress: the larger of the step and time fractions
        return schedule.progress(step, total, time.perf_counter() - t_train, budget if budget > 0 else None)

    while epoch < cfg.epochs and done() < 1.0:
        rng.shuffle(train)
        for x, y, v in _batches(train, feats, labels, cfg.batch, voices, cfg.crop, rng):
            for group in opt.param_groups:
                group["lr"] = cfg.lr * lr_factor(done())
            phone, voice = net.heads(x)
            loss_t = nn.functional.cross_entropy(phone.flatten(0, 1), y.flatten())
            if voice is not None:
                loss_t = loss_t + nn.functional.cross_entropy(voice.flatten(0, 1), v.flatten())
            opt.zero_grad(set_to_none=True)
            loss_t.backward()
            opt.step()
            step, loss = step + 1, loss_t.item()
            if done() >= 1.0:
                break
        epoch += 1
        log.info("phones: epoch %d, step %d/%d, loss %.3f", epoch, step, total, loss)
    acc, v_acc = _accuracy(net, held, feats, labels, voices) if held else (float("nan"),) * 2
    log.info("phone encoder: %d phones, %d utterances, %d steps in %.0f s; held-out frame "
             "accuracy %.3f (%d utterances)%s", len(inventory), len(train), step,
             time.perf_counter() - t_train, acc, len(held),
             f"; voice ({cfg.voice}: {', '.join(classes)}) {v_acc:.3f}" if classes else "")
    meta = {"format": FORMAT, "n_mels": mel.n_mels, "n_fft": mel.n_fft, "hop": mel.hop,
            "hidden": cfg.hidden, "layers": cfg.layers, "kernel": cfg.kernel,
            "phones": inventory, "heldout_frame_accuracy": round(acc, 4),
            "voice": cfg.voice, "voices": classes, "voice_weight": cfg.voice_weight,
            "heldout_voice_accuracy": round(v_acc, 4) if classes else None,
            "heldout_utterances": len(held), "train_utterances": len(train), "steps": step,
            "seconds": round(time.perf_counter() - t0, 1), "trained_with": settings}
    with atomic_dir(out) as tmp:
        save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(tmp / WEIGHTS))
        (tmp / CONFIG).write_text(json.dumps(meta, indent=2))
    return out


class PhoneEncoder:
    """``phones:<folder>``: per-frame phone posteriors (dim = number of phones) at 25 Hz; for an
    encoder trained with ``voice="gender"``, followed by its voice posteriors, centred and
    weighted by ``voice_weight`` times the frame's speech probability (1 - p(pause)), so
    pauses carry no voice and their units stay shared by every speaker."""

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
        self.voices: list[str] = list(meta.get("voices") or [])
        self.voice_weight = float(meta.get("voice_weight", 1.0))
        self.net = PhoneNet(meta["n_mels"], len(self.phones), meta["hidden"], meta["layers"],
                            meta["kernel"], len(self.voices))
        state = load_file(str(w_path))
        self.net.load_state_dict(state)
        self.net.to(self.device).eval()
        self.id = f"phones:{folder.resolve()}"
        self.weights_hash = weights_hash(folder)
        self.layer = 0
        self.min_seconds = min_seconds

    @property
    def dim(self) -> int:
        return len(self.phones) + len(self.voices)

    def unit_log_mels(self, centroids: torch.Tensor) -> torch.Tensor:
        """k-means centroids over features (k, dim) -> a log-mel frame per unit (k, n_mels):
        the phones' mean frames weighted by the centroid's phone posteriors (for the mel
        inverse); with a voice head, each voice class's mean frames, mixed by the voice
        posteriors the centroid's voice part implies (so gendered units keep their voice)."""
        c = torch.as_tensor(centroids, dtype=torch.float32)
        n = len(self.phones)
        w = c[:, :n].clamp(min=0)
        w = w / w.sum(1, keepdim=True).clamp(min=1e-6)
        if not self.voices:
            return w @ self.net.phone_mels.float().cpu()
        speech = (1.0 - w[:, self.phones.index(PAUSE)]).clamp(min=1e-3)[:, None]
        p = (c[:, n:] / (self.voice_weight * speech) + 1.0 / len(self.voices)).clamp(0, 1)
        p = p / p.sum(1, keepdim=True).clamp(min=1e-6)  # (k, n_voices)
        per_voice = torch.einsum("kp,vpm->kvm", w, self.net.voice_mels.float().cpu())
        return torch.einsum("kv,kvm->km", p, per_voice)

    def n_frames(self, n_samples: int) -> int:
        return self.mel.n_frames(n_samples)

    @torch.no_grad()
    def features(self, wavs: list[np.ndarray]) -> list[torch.Tensor]:
        """(T_i,) float32 arrays -> list of (n_frames_i, dim) features (each utterance on its
        own, so a file's features do not depend on the batch)."""
        out = []
        pause = self.phones.index(PAUSE)
        for f in self.mel.features(wavs):
            if not len(f):
                out.append(torch.zeros(0, self.dim))
                continue
            phone, voice = self.net.heads(f[None].to(self.device))
            post = torch.softmax(phone[0].float(), -1)
            if voice is not None:
                speech = 1.0 - post[:, pause:pause + 1]
                v = torch.softmax(voice[0].float(), -1) - 1.0 / len(self.voices)
                post = torch.cat([post, self.voice_weight * speech * v], 1)
            out.append(post)
        return out


def weights_hash(folder: str | Path) -> str:
    """First 16 hex of the weights' sha256: stored in unit identities beside the encoder id, so
    units are never mixed with a retrained encoder of the same folder."""
    path = Path(folder) / WEIGHTS
    if not path.is_file():
        raise FileNotFoundError(f"phones:{folder}: no {WEIGHTS} there (train one: slam units "
                                f"train-phones --manifest M --out {folder})")
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]

