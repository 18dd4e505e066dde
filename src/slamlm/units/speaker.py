"""Speaker embeddings (d-vectors) with the weights the ``Resemblyzer==0.1.4`` wheel ships.

Resemblyzer's own code is not imported (it needs ``webrtcvad`` and the old ``typing``
backport, and calls librosa with positional arguments librosa >= 0.10 rejects): only its
``resemblyzer/pretrained.pt`` is read, found with ``importlib.util.find_spec`` without
importing the package, and run by the small torch module here, which follows its
``voice_encoder.py`` / ``audio.py`` / ``hparams.py``:

- front end: 16 kHz; power (not log) mel spectrogram, 40 Slaney mel bands (librosa's
  default filters), 400-sample (25 ms) Hann window, hop 160 (10 ms), centred frames with zero
  padding (librosa >= 0.10's ``pad_mode="constant"``);
- network: a 3-layer LSTM (40 -> 256), the last layer's final hidden state -> Linear(256,
  256) -> ReLU -> L2 normalisation;
- an utterance: 160-frame (1.6 s) partials at 1.3 per second (the last one kept when it is
  at least 75% covered, the waveform zero-padded to it), their embeddings averaged and
  L2-normalised again;
- preprocessing: the volume is raised (never lowered) to -30 dBFS. Resemblyzer also cuts
  silences longer than ~0.2 s with webrtcvad; that step is left out here (no compiled VAD
  dependency), which only matters for audio with long pauses.

Example:
    >>> # enc = load_speaker_encoder("resemblyzer")
    >>> # enc.embed(wav).shape       # (256,), unit norm; same voice -> cosine near 1
    >>> # float(enc.embed(a) @ enc.embed(b))
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import numpy as np
import torch
from torch import nn

log = logging.getLogger(__name__)

INSTALL = 'pip install --no-deps "Resemblyzer==0.1.4"'
SAMPLE_RATE = 16_000
N_FFT, HOP, N_MELS = 400, 160, 40  # 25 ms window, 10 ms step (hparams.py)
PARTIAL_FRAMES = 160  # 1.6 s per partial utterance
HIDDEN, EMBED, LAYERS = 256, 256, 3
NORM_DBFS = -30.0
INT16_MAX = 2**15 - 1


def resemblyzer_weights() -> Path:
    """Path of ``resemblyzer/pretrained.pt`` from the installed wheel (package not imported)."""
    spec = importlib.util.find_spec("resemblyzer")
    if spec is None or not spec.origin:
        raise ModuleNotFoundError(f"the speaker encoder needs the Resemblyzer wheel's weights: "
                                  f"{INSTALL}")
    path = Path(spec.origin).parent / "pretrained.pt"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: Resemblyzer is installed without pretrained.pt; "
                                f"reinstall it: {INSTALL}")
    return path


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney mel scale: linear (200/3 Hz per mel) below 1 kHz, logarithmic above."""
    f = np.asarray(f, dtype=np.float64)
    logstep = np.log(6.4) / 27.0
    return np.where(f >= 1000.0, 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / logstep,
                    f * 3.0 / 200.0)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    logstep = np.log(6.4) / 27.0
    return np.where(m >= 15.0, 1000.0 * np.exp(logstep * (m - 15.0)), m * 200.0 / 3.0)


def slaney_filterbank(n_mels: int = N_MELS, n_fft: int = N_FFT, sr: int = SAMPLE_RATE
                      ) -> torch.Tensor:
    """librosa's default ``filters.mel`` (Slaney scale and area norm), (n_mels, n_fft//2 + 1)."""
    edges = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(sr / 2), n_mels + 2))
    freqs = np.linspace(0, sr / 2, n_fft // 2 + 1)
    width = np.diff(edges)
    ramps = edges[:, None] - freqs[None]
    lower = -ramps[:-2] / width[:-1, None]
    upper = ramps[2:] / width[1:, None]
    fb = np.maximum(0.0, np.minimum(lower, upper)) * (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return torch.from_numpy(fb.astype(np.float32))


def power_mel(x: torch.Tensor, fb: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """(n_samples,) -> (1 + n_samples // 160, 40) power mel frames (no log), as
    ``librosa.feature.melspectrogram(y, sr=16000, n_fft=400, hop_length=160, n_mels=40)``."""
    spec = torch.stft(x, N_FFT, HOP, window=window, center=True, pad_mode="constant",
                      return_complex=True).abs() ** 2  # (bins, frames)
    return (fb @ spec).T


def partial_slices(n_samples: int, rate: float = 1.3, min_coverage: float = 0.75
                   ) -> list[tuple[int, int]]:
    """Mel-frame ranges ``[start, start + 160)`` of the partial utterances (Resemblyzer's
    ``compute_partial_slices``): one every ``1 / rate`` s, the last dropped when less than
    ``min_coverage`` of it holds audio (unless it is the only one)."""
    n_frames = int(np.ceil((n_samples + 1) / HOP))
    step = int(np.round(SAMPLE_RATE / rate / HOP))
    if not 0 < step <= PARTIAL_FRAMES:
        raise ValueError(f"partial rate {rate}/s: need {SAMPLE_RATE / (HOP * PARTIAL_FRAMES)} "
                         f"<= rate <= {SAMPLE_RATE / HOP}")
    starts = range(0, max(1, n_frames - PARTIAL_FRAMES + step + 1), step)
    out = [(s, s + PARTIAL_FRAMES) for s in starts]
    last = out[-1]
    coverage = (n_samples - last[0] * HOP) / (PARTIAL_FRAMES * HOP)
    if coverage < min_coverage and len(out) > 1:
        out = out[:-1]
    return out


def normalize_volume(wav: np.ndarray, target_dbfs: float = NORM_DBFS) -> np.ndarray:
    """Raise (never lower) the RMS level to ``target_dbfs`` (Resemblyzer's preprocessing)."""
    rms = float(np.sqrt(np.mean((wav.astype(np.float64) * INT16_MAX) ** 2))) if wav.size else 0.0
    if rms == 0.0:
        return wav
    change = target_dbfs - 20 * np.log10(rms / INT16_MAX)
    return wav if change < 0 else (wav * 10 ** (change / 20)).astype(np.float32)


class SpeakerNet(nn.Module):
    """Resemblyzer's ``VoiceEncoder`` network: mel partials (B, 160, 40) -> (B, 256), unit norm."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(N_MELS, HIDDEN, LAYERS, batch_first=True)
        self.linear = nn.Linear(HIDDEN, EMBED)

    def forward(self, mels: torch.Tensor) -> torch.Tensor:
        _, (hidden, _) = self.lstm(mels)
        e = torch.relu(self.linear(hidden[-1]))
        return e / e.norm(dim=1, keepdim=True).clamp_min(1e-12)


class SpeakerEncoder:
    """``embed(wav) -> (256,)`` unit-norm d-vector of a 16 kHz mono float waveform."""

    id = "resemblyzer-0.1.4"
    dim = EMBED
    sample_rate = SAMPLE_RATE

    def __init__(self, weights: str | Path | None = None, device: str | torch.device = "cpu"):
        path = Path(weights) if weights else resemblyzer_weights()
        blob = torch.load(path, map_location="cpu", weights_only=True)
        state = blob.get("model_state", blob)
        self.net = SpeakerNet()
        wanted = self.net.state_dict().keys()
        missing = [k for k in wanted if k not in state]
        if missing:
            raise ValueError(f"{path}: not a Resemblyzer voice encoder (missing {missing[:3]})")
        self.net.load_state_dict({k: state[k] for k in wanted})
        self.device = torch.device(device)
        self.net.to(self.device).eval()
        self.fb = slaney_filterbank().to(self.device)
        self.window = torch.hann_window(N_FFT, device=self.device)

    def mel(self, wav: np.ndarray) -> torch.Tensor:
        x = torch.as_tensor(np.asarray(wav, dtype=np.float32), device=self.device)
        return power_mel(x, self.fb, self.window)

    @torch.no_grad()
    def embed(self, wav: np.ndarray, rate: float = 1.3, min_coverage: float = 0.75,
              preprocess: bool = True) -> np.ndarray:
        """One utterance's embedding: mean of its partials' embeddings, L2-normalised."""
        wav = np.asarray(wav, dtype=np.float32).reshape(-1)
        if preprocess:
            wav = normalize_volume(wav)
        if wav.size < HOP:
            raise ValueError(f"speaker embedding: {wav.size} samples is too short (>= 10 ms)")
        slices = partial_slices(len(wav), rate, min_coverage)
        end = slices[-1][1] * HOP
        if end >= len(wav):
            wav = np.pad(wav, (0, end - len(wav)))
        mel = self.mel(wav)
        parts = self.net(torch.stack([mel[a:b] for a, b in slices]))
        mean = parts.mean(0)
        return (mean / mean.norm()).float().cpu().numpy()

    def embed_many(self, wavs: list[np.ndarray]) -> np.ndarray:
        """(N, 256) embeddings, one per utterance."""
        return np.stack([self.embed(w) for w in wavs]) if wavs else np.zeros((0, EMBED), np.float32)


SPEAKER_ENCODERS = {"resemblyzer": SpeakerEncoder}


def load_speaker_encoder(name: str = "resemblyzer", device: str | torch.device = "cpu"
                         ) -> SpeakerEncoder:
    """A speaker encoder by name (today ``resemblyzer``); a clear error when unknown."""
    if name not in SPEAKER_ENCODERS:
        raise ValueError(f"unknown speaker encoder {name!r}; known: {sorted(SPEAKER_ENCODERS)}")
    return SPEAKER_ENCODERS[name](device=device)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two embeddings."""
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))
