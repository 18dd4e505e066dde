"""Load, validate, mix and resample audio (soundfile + soxr) with errors that name the file.

Example:
    >>> import numpy as np, soundfile as sf, tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "a.wav")
    >>> sf.write(p, np.zeros((44100, 2), dtype="float32") + 0.1, 44100)
    >>> wav = load_audio(p)            # stereo 44.1 kHz -> mono 16 kHz float32
    >>> wav.shape, wav.dtype
    ((16000,), dtype('float32'))
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

TARGET_SR = 16_000
MIN_SR = 2_000  # lowest sample rate accepted as speech
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".opus", ".aiff", ".aif", ".au")


class AudioError(ValueError):
    """Audio that cannot be used; ``str(e)`` reads ``<path>: <reason> (<fix>)``."""

    def __init__(self, path: str | Path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


@dataclass(frozen=True)
class AudioInfo:
    """What the header says, read without decoding the samples."""

    sample_rate: int
    channels: int
    frames: int

    @property
    def seconds(self) -> float:
        return self.frames / self.sample_rate if self.sample_rate else 0.0


def probe_audio(path: str | Path) -> AudioInfo:
    """Read the header of an audio file (cheap: used for length-sorted batching)."""
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise AudioError(path, "file does not exist")
    if path.stat().st_size == 0:
        raise AudioError(path, "empty file (0 bytes)")
    try:
        info = sf.info(str(path))
    except Exception as e:  # soundfile raises LibsndfileError / RuntimeError
        raise AudioError(path, f"not a readable audio file ({_short(e)})") from e
    return AudioInfo(int(info.samplerate), int(info.channels), int(info.frames))


def _short(e: Exception) -> str:
    msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return msg[:200]


def resample(wav: np.ndarray, sr_in: int, sr_out: int = TARGET_SR) -> np.ndarray:
    """High-quality resampling (soxr, VHQ). ``wav`` is (T,) float32."""
    if sr_in == sr_out:
        return wav.astype(np.float32, copy=False)
    import soxr

    return soxr.resample(wav, sr_in, sr_out, quality="VHQ").astype(np.float32, copy=False)


def load_audio(
    path: str | Path,
    target_sr: int = TARGET_SR,
    min_seconds: float = 0.0,
    max_seconds: float | None = None,
) -> np.ndarray:
    """Decode ``path`` to mono float32 at ``target_sr`` and validate it.

    Raises :class:`AudioError` for: missing/unreadable/corrupt files, no samples, audio shorter
    than ``min_seconds`` (e.g. the encoder's receptive field), longer than ``max_seconds``, and
    NaN/inf samples. Clipping (many samples at full scale) only logs a warning.
    """
    import soundfile as sf

    path = Path(path)
    info = probe_audio(path)
    if info.frames == 0:
        raise AudioError(path, "contains no audio samples")
    if info.sample_rate < MIN_SR:  # a wrong header; resampling it would blow up memory
        raise AudioError(path, f"sample rate {info.sample_rate} Hz is below {MIN_SR} Hz, not "
                               f"speech audio (fix the file's header or re-encode it)")
    if max_seconds is not None and info.seconds > max_seconds:
        raise AudioError(
            path, f"is {info.seconds:.1f} s long, over the {max_seconds:.0f} s limit (split it first)"
        )
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as e:
        raise AudioError(path, f"corrupt or truncated audio ({_short(e)})") from e
    if data.shape[0] == 0:
        raise AudioError(path, "contains no audio samples")
    if data.shape[0] < 0.9 * info.frames:
        raise AudioError(
            path, f"truncated: header says {info.frames} samples, only {data.shape[0]} decode"
        )
    if not np.isfinite(data).all():
        raise AudioError(path, "contains NaN or infinite samples")
    wav = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    peak_share = float(np.mean(np.abs(wav) >= 0.999))
    if peak_share > 0.001:
        log.warning("%s: %.1f%% of samples are at full scale (clipped audio)", path, 100 * peak_share)
    wav = resample(np.ascontiguousarray(wav), int(sr), target_sr)
    seconds = len(wav) / target_sr
    if seconds < min_seconds:
        raise AudioError(
            path, f"too short: {seconds:.3f} s, the encoder needs at least {min_seconds:.3f} s"
        )
    return wav


def find_audio(root: str | Path, pattern: str = "**/*") -> list[Path]:
    """Audio files under ``root`` matching a glob, sorted (stable order for ids).

    ``root`` may itself be a glob such as ``data/*.flac``.
    """
    root_s = str(root)
    if any(c in root_s for c in "*?["):
        import glob

        paths = [Path(p) for p in glob.glob(root_s, recursive=True)]
    else:
        root = Path(root)
        if root.is_file():
            return [root]
        if not root.is_dir():
            raise AudioError(root, "no such file or folder")
        paths = list(root.glob(pattern))
    return sorted(p for p in paths if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)


def record_id(path: str | Path, root: str | Path | None) -> str:
    """Stable record id: path relative to ``root`` without its extension (posix slashes)."""
    path = Path(path)
    if root is not None:
        root_s = str(root)
        if any(c in root_s for c in "*?["):  # a glob: ids are relative to its fixed prefix
            fixed = [p for p in Path(root_s).parts if not any(c in p for c in "*?[")]
            cut = next(i for i, p in enumerate(Path(root_s).parts) if any(c in p for c in "*?["))
            root = Path(*fixed[:cut]) if cut else Path(".")
        root = Path(root)
        if root.is_file():
            root = root.parent
        try:
            path = path.resolve().relative_to(Path(root).resolve())
        except ValueError:
            path = Path(path.name)
    return path.with_suffix("").as_posix()


def save_audio(path: str | Path, wav: np.ndarray, sr: int = TARGET_SR) -> Path:
    """Write mono float audio (WAV or FLAC by extension) atomically."""
    import io

    import soundfile as sf

    from slamlm.io import atomic_write_bytes

    path = Path(path)
    fmt = {".flac": "FLAC", ".wav": "WAV", ".ogg": "OGG"}.get(path.suffix.lower(), "WAV")
    buf = io.BytesIO()
    sf.write(buf, np.clip(np.asarray(wav, dtype=np.float32), -1, 1), sr, format=fmt,
             subtype="PCM_16" if fmt != "OGG" else None)
    return atomic_write_bytes(path, buf.getvalue())
