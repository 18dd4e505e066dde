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


def probe_bytes(data: bytes, where: str) -> AudioInfo:
    """:func:`probe_audio` of encoded audio held in memory (``where`` names it in errors)."""
    import io

    import soundfile as sf

    if not data:
        raise AudioError(where, "empty audio (0 bytes)")
    try:
        info = sf.info(io.BytesIO(data))
    except Exception as e:
        raise AudioError(where, f"not readable audio bytes ({_short(e)})") from e
    return AudioInfo(int(info.samplerate), int(info.channels), int(info.frames))


def load_audio(
    path: str | Path,
    target_sr: int = TARGET_SR,
    min_seconds: float = 0.0,
    max_seconds: float | None = None,
    offset: float = 0.0,
    duration: float | None = None,
) -> np.ndarray:
    """Decode ``path`` to mono float32 at ``target_sr`` and validate it.

    Raises :class:`AudioError` for: missing/unreadable/corrupt files, no samples, audio shorter
    than ``min_seconds`` (e.g. the encoder's receptive field), longer than ``max_seconds``, and
    NaN/inf samples. Clipping (many samples at full scale) only logs a warning. ``offset`` /
    ``duration`` (seconds) decode only that span (a lhotse cut of a longer recording).
    """
    path = Path(path)
    return _decode(str(path), path, probe_audio(path), target_sr, min_seconds, max_seconds,
                   offset, duration)


def load_audio_bytes(data: bytes, where: str, target_sr: int = TARGET_SR,
                     min_seconds: float = 0.0, max_seconds: float | None = None) -> np.ndarray:
    """:func:`load_audio` of encoded audio in memory (a parquet cell, a tar member)."""
    import io

    info = probe_bytes(data, where)
    return _decode(io.BytesIO(data), where, info, target_sr, min_seconds, max_seconds, 0.0, None)


def check_wav(wav: np.ndarray, sr: int, where: str, target_sr: int = TARGET_SR,
              min_seconds: float = 0.0) -> np.ndarray:
    """Validate and resample an already decoded array (a dataset's ``array`` column)."""
    wav = np.asarray(wav, dtype=np.float32)
    if wav.ndim == 2:
        wav = wav.mean(axis=0 if wav.shape[0] < wav.shape[1] else 1)
    if wav.ndim != 1 or wav.size == 0:
        raise AudioError(where, "contains no audio samples")
    if sr < MIN_SR:
        raise AudioError(where, f"sample rate {sr} Hz is below {MIN_SR} Hz, not speech audio")
    if not np.isfinite(wav).all():
        raise AudioError(where, "contains NaN or infinite samples")
    wav = resample(np.ascontiguousarray(wav), int(sr), target_sr)
    if len(wav) / target_sr < min_seconds:
        raise AudioError(where, f"too short: {len(wav) / target_sr:.3f} s, the encoder needs "
                                f"at least {min_seconds:.3f} s")
    return wav


def _decode(src, where, info: AudioInfo, target_sr: int, min_seconds: float,
            max_seconds: float | None, offset: float, duration: float | None) -> np.ndarray:
    import soundfile as sf

    if info.frames == 0:
        raise AudioError(where, "contains no audio samples")
    if info.sample_rate < MIN_SR:  # a wrong header; resampling it would blow up memory
        raise AudioError(where, f"sample rate {info.sample_rate} Hz is below {MIN_SR} Hz, not "
                                f"speech audio (fix the file's header or re-encode it)")
    start = int(round(offset * info.sample_rate))
    want = info.frames - start if duration is None else int(round(duration * info.sample_rate))
    if start < 0 or start >= info.frames or want <= 0:
        raise AudioError(where, f"span {offset:.3f}+{duration} s is outside the audio "
                                f"({info.seconds:.3f} s long)")
    want = min(want, info.frames - start)
    if max_seconds is not None and want / info.sample_rate > max_seconds:
        raise AudioError(
            where, f"is {want / info.sample_rate:.1f} s long, over the {max_seconds:.0f} s limit "
                   f"(split it first)")
    try:
        data, sr = sf.read(src, dtype="float32", always_2d=True, start=start, frames=want)
    except Exception as e:
        raise AudioError(where, f"corrupt or truncated audio ({_short(e)})") from e
    if data.shape[0] == 0:
        raise AudioError(where, "contains no audio samples")
    if data.shape[0] < 0.9 * want:
        raise AudioError(
            where, f"truncated: header says {want} samples, only {data.shape[0]} decode"
        )
    if not np.isfinite(data).all():
        raise AudioError(where, "contains NaN or infinite samples")
    wav = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    peak_share = float(np.mean(np.abs(wav) >= 0.999))
    if peak_share > 0.001:
        log.warning("%s: %.1f%% of samples are at full scale (clipped audio)", where, 100 * peak_share)
    wav = resample(np.ascontiguousarray(wav), int(sr), target_sr)
    seconds = len(wav) / target_sr
    if seconds < min_seconds:
        raise AudioError(
            where, f"too short: {seconds:.3f} s, the encoder needs at least {min_seconds:.3f} s"
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


def audio_bytes(wav: np.ndarray, sr: int = TARGET_SR, fmt: str = "WAV") -> bytes:
    """The bytes :func:`save_audio` writes for ``wav`` (16-bit PCM, clipped to [-1, 1];
    ``fmt``: WAV, FLAC or OGG): the same samples always give the same bytes.

    Example:
        >>> len(audio_bytes(np.zeros(160, np.float32)))  # 44-byte header + 160 x 2 bytes
        364
    """
    import io

    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.clip(np.asarray(wav, dtype=np.float32), -1, 1), sr, format=fmt,
             subtype="PCM_16" if fmt != "OGG" else None)
    return buf.getvalue()


def save_audio(path: str | Path, wav: np.ndarray, sr: int = TARGET_SR) -> Path:
    """Write mono float audio (WAV or FLAC by extension) atomically."""
    from slamlm.io import atomic_write_bytes

    path = Path(path)
    fmt = {".flac": "FLAC", ".wav": "WAV", ".ogg": "OGG"}.get(path.suffix.lower(), "WAV")
    return atomic_write_bytes(path, audio_bytes(wav, sr, fmt))
