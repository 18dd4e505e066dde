"""Pluggable speech recognition for generative metrics: Whisper (transformers) or PocketSphinx.

``load_asr(spec)``:

- ``"pocketsphinx"`` (default offline): the ``pocketsphinx`` wheel's bundled US-English model;
  ``"pocketsphinx:fast"`` skips the second (flat-lexicon) pass and lattice rescoring, ~2x faster;
- ``"whisper"`` / ``"whisper:<hub id or folder>"``: ``openai/whisper-large-v3-turbo`` by default,
  through ``transformers`` (needs the weights locally or hub access).

Every ASR has ``transcribe(wavs: list[16 kHz float32 arrays]) -> list[str]`` (lower case, no
punctuation) and ``name``.

Example:
    >>> normalize_text("Hello, World!  It's  fine.")
    "hello world it's fine"
    >>> # asr = load_asr("pocketsphinx"); asr.transcribe([wav])
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

import numpy as np

log = logging.getLogger(__name__)

WHISPER_DEFAULT = "openai/whisper-large-v3-turbo"
SAMPLE_RATE = 16_000


def normalize_text(text: str) -> str:
    """Lower-case, drop punctuation except in-word apostrophes, collapse spaces."""
    text = re.sub(r"\[[^\]]*\]|<[^>]*>", " ", text.lower())  # [noise], <sil> markers
    text = re.sub(r"[^a-z0-9' ]+", " ", text)
    text = re.sub(r"(?<![a-z0-9])'|'(?![a-z0-9])", " ", text)
    return " ".join(text.split())


_WORKER_ASR: PocketSphinxASR | None = None


def _worker_init(fast: bool, max_hmm: int = 0) -> None:
    global _WORKER_ASR
    _WORKER_ASR = PocketSphinxASR(fast=fast, max_hmm=max_hmm)


def _worker_transcribe(job: tuple[np.ndarray, bool]) -> str:
    return _WORKER_ASR.transcribe([job[0]], raw=job[1])[0]


class PocketSphinxASR:
    """Offline ASR with the US-English model shipped in the ``pocketsphinx`` wheel.

    Each speech clip is decoded from the same feature state (cepstral mean reset), so its text
    does not depend on the clips before it (a clip of pure silence still can). The decoder is
    single-threaded: ``workers > 1`` decodes several clips at once in that many processes,
    with the same texts.
    """

    def __init__(self, fast: bool = False, workers: int = 1, max_hmm: int = 0):
        try:
            from pocketsphinx import Decoder
        except ImportError as e:
            raise ImportError("pocketsphinx ASR needs: pip install 'slamlm[offline]'") from e
        self.fast, self.workers, self.max_hmm = fast, max(1, int(workers)), int(max_hmm)
        opts: dict = {"fwdflat": False, "bestpath": False} if fast else {}
        if self.max_hmm > 0:  # at most this many active HMMs per frame (the search's beam cap)
            opts["maxhmmpf"] = self.max_hmm
        self.decoder = Decoder(samprate=SAMPLE_RATE, loglevel="FATAL", **opts)
        # live CMN carries each clip's cepstral mean into the next: reset the features per
        # clip, so a clip's text does not depend on what was decoded before it
        self._cmn0 = self.decoder.get_cmn()
        self.name = ("pocketsphinx:fast" if fast else "pocketsphinx") + (
            f" (max {self.max_hmm} HMMs/frame)" if self.max_hmm else "")

    def transcribe(self, wavs: Sequence[np.ndarray], raw: bool = False) -> list[str]:
        """Normalised text per clip (``raw``: the decoder's own words, as GenPPL uses)."""
        if self.workers > 1 and len(wavs) > 1:
            import multiprocessing as mp

            # longest first, so no worker is left with a long clip at the end
            order = sorted(range(len(wavs)), key=lambda i: -len(wavs[i]))
            ctx = mp.get_context("spawn")  # never fork a process that holds torch threads
            with ctx.Pool(min(self.workers, len(wavs)), initializer=_worker_init,
                          initargs=(self.fast, self.max_hmm)) as pool:
                got = pool.map(_worker_transcribe, [(wavs[i], raw) for i in order], chunksize=1)
            out = [""] * len(wavs)
            for i, t in zip(order, got):
                out[i] = t
            return out
        out = []
        for wav in wavs:
            pcm = (np.clip(np.asarray(wav, dtype=np.float32), -1, 1) * 32767).astype(np.int16)
            self.decoder.set_cmn(self._cmn0)
            self.decoder.reinit_feat()
            self.decoder.start_utt()
            self.decoder.process_raw(pcm.tobytes(), full_utt=True)
            self.decoder.end_utt()
            hyp = self.decoder.hyp()
            text = hyp.hypstr if hyp is not None else ""
            out.append(" ".join(text.split()) if raw else normalize_text(text))
        return out


class WhisperASR:
    """Whisper through ``transformers`` (English, greedy), batched on ``device``."""

    def __init__(self, model_id: str = WHISPER_DEFAULT, device: str = "cpu",
                 batch_size: int = 8, language: str = "en"):
        import torch
        from transformers import AutoProcessor, WhisperForConditionalGeneration

        self.device = torch.device(device)
        dtype = torch.float16 if self.device.type == "cuda" else torch.float32
        try:
            self.processor = AutoProcessor.from_pretrained(model_id)
            self.model = WhisperForConditionalGeneration.from_pretrained(model_id, dtype=dtype)
        except (OSError, ValueError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise RuntimeError(
                f"Whisper {model_id!r} could not be loaded: {first} -- "
                f"download it (unset HF_HUB_OFFLINE, or pass a local folder as "
                f"--asr whisper:/path) or use --asr pocketsphinx offline"
            ) from e
        self.model = self.model.to(self.device).eval()
        self.batch_size, self.language = batch_size, language
        self.name = f"whisper:{model_id}"

    def transcribe(self, wavs: Sequence[np.ndarray], raw: bool = False) -> list[str]:
        """Normalised text per clip (``raw``: Whisper's text as decoded, as GenPPL uses)."""
        import torch

        out: list[str] = []
        for i in range(0, len(wavs), self.batch_size):
            batch = [np.asarray(w, dtype=np.float32) for w in wavs[i: i + self.batch_size]]
            feats = self.processor(batch, sampling_rate=SAMPLE_RATE, return_tensors="pt")
            x = feats.input_features.to(self.device, self.model.dtype)
            with torch.inference_mode():
                ids = self.model.generate(x, language=self.language, task="transcribe")
            texts = self.processor.batch_decode(ids, skip_special_tokens=True)
            out += [t.strip() if raw else normalize_text(t) for t in texts]
        return out


def load_asr(spec: str = "pocketsphinx", device: str = "cpu", workers: int = 1,
             max_hmm: int = 0) -> PocketSphinxASR | WhisperASR:
    """``pocketsphinx[:fast]`` or ``whisper[:<hub id or folder>]`` -> an ASR object
    (``workers``: pocketsphinx decoder processes; ``max_hmm``: its cap on active HMMs per
    frame, 0: the model's default)."""
    if spec in ("pocketsphinx", "pocketsphinx:fast"):
        return PocketSphinxASR(fast=spec.endswith(":fast"), workers=workers, max_hmm=max_hmm)
    if spec == "whisper" or spec.startswith("whisper:"):
        return WhisperASR(spec.partition(":")[2] or WHISPER_DEFAULT, device=device)
    raise ValueError(f"unknown ASR {spec!r}: use pocketsphinx, pocketsphinx:fast, whisper or "
                     f"whisper:<hub id or folder>")
