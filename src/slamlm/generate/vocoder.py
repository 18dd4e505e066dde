"""Pick and run a vocoder: units (+ durations) -> waveform.

``load_vocoder(spec, extractor_identity)``:

- ``"mel"``: the weight-free :class:`~slamlm.generate.mel_inverse.MelInverter` (``mel`` units,
  or ``phones`` units spoken with each phone's mean mel frame; reads the k-means centroids
  named by the identity);
- ``"hifigan:PATH"``: a textlesslib/fairseq unit HiFi-GAN (``PATH`` = ``g_XXXXXXXX`` file or
  its folder, ``config.json`` beside it), or one ``slam vocoder train`` wrote (either arch);
- ``"auto"``: ``mel`` for mel units, else an error asking for ``hifigan:PATH``.

Every vocoder is called as ``voc(units, durations=None, reference=None) -> float32 wav`` and
has ``sample_rate`` and ``name``. ``durations`` (run lengths) expand deduplicated units; without
them a HiFi-GAN with a duration predictor predicts them, otherwise each unit is one frame.

A speaker-conditioned HiFi-GAN (``multispkr`` + ``embedder_params`` in its config, from
``slam vocoder train --speaker-embedding resemblyzer``) needs a voice: ``speaker_wav`` (a
reference recording, embedded once with the encoder its config names) or a ``speaker=``
embedding per call; without one it raises a clear error.

Example:
    >>> # voc = load_vocoder("mel", meta["units"])
    >>> # wav = voc(units, durations, reference=prompt_wav)
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

log = logging.getLogger(__name__)


class HiFiGANVocoder:
    """A :class:`~slamlm.generate.hifigan.CodeHiFiGAN` behind the common vocoder call."""

    def __init__(self, path: str | Path, device: str | torch.device = "cpu",
                 n_units: int | None = None, speaker_wav: str | Path | None = None):
        from slamlm.generate.hifigan import CodeHiFiGAN, checkpoint_config, load_code_hifigan
        from slamlm.generate.istft import ISTFTGenerator

        istft = checkpoint_config(path).get("model_type") == "istft"  # slam vocoder train --arch istft
        self.model = load_code_hifigan(path, device=device,
                                       model_cls=ISTFTGenerator if istft else CodeHiFiGAN)
        self.device = torch.device(device)
        self.sample_rate = int(self.model.cfg.get("sampling_rate", 16000))
        self.name = f"hifigan:{path}"
        n_emb = int(self.model.cfg["num_embeddings"])
        if n_units is not None and n_units > n_emb:
            raise ValueError(f"{path}: vocoder knows {n_emb} units but the model uses {n_units} "
                             f"(a vocoder for another k-means?)")
        self.embedder = self.model.cfg.get("embedder_params") if self.model.spkr is not None else None
        self.speaker: np.ndarray | None = None
        if speaker_wav and self.embedder is None:
            raise ValueError(f"--speaker-wav {speaker_wav}: vocoder {path} is not "
                             f"speaker-conditioned (its config.json has no multispkr)")
        if speaker_wav:
            self.speaker = self.embed_speaker(speaker_wav)

    @property
    def speaker_conditioned(self) -> bool:
        return self.embedder is not None

    def embed_speaker(self, wav: str | Path | np.ndarray) -> np.ndarray:
        """A reference recording (path or 16 kHz samples) -> the embedding this vocoder takes."""
        from slamlm.audio import load_audio
        from slamlm.units.speaker import SPEAKER_ENCODERS, load_speaker_encoder

        name = self.embedder.get("name") if self.embedder else None
        if name not in SPEAKER_ENCODERS:
            raise ValueError(f"{self.name}: embedder_params {self.embedder} names no speaker "
                             f"encoder slamlm has ({sorted(SPEAKER_ENCODERS)})")
        if not hasattr(self, "_encoder"):
            self._encoder = load_speaker_encoder(name, device=self.device)
        samples = load_audio(wav) if isinstance(wav, (str, Path)) else np.asarray(wav, np.float32)
        return self._encoder.embed(samples)

    @torch.no_grad()
    def __call__(self, units: np.ndarray, durations: np.ndarray | None = None,
                 reference: np.ndarray | None = None, speaker: np.ndarray | None = None
                 ) -> np.ndarray:
        """``speaker``: this call's speaker embedding (default: the ``speaker_wav``'s; a
        vocoder without a speaker input ignores it)."""
        speaker = self.speaker if speaker is None else speaker
        if self.speaker_conditioned and speaker is None:
            raise ValueError(f"{self.name} is speaker-conditioned: give a reference voice "
                             f"(slam generate --speaker-wav PATH)")
        units = np.asarray(units, dtype=np.int64)
        if units.size == 0:
            return np.zeros(0, dtype=np.float32)
        predict = durations is None and self.model.dur_predictor is not None
        if durations is not None:
            units = np.repeat(units, np.asarray(durations, dtype=np.int64))
        code = torch.as_tensor(units, device=self.device)[None]
        spkr = None if speaker is None or not self.speaker_conditioned else (
            torch.as_tensor(np.asarray(speaker, np.float32), device=self.device)[None])
        return self.model(code, dur_prediction=predict, spkr=spkr)[0].float().cpu().numpy()


class MelVocoder:
    """The weight-free mel inverse behind the common vocoder call."""

    def __init__(self, identity: dict[str, Any], n_iter: int = 32):
        from slamlm.generate.mel_inverse import MelInverter
        from slamlm.units.encoders import load_encoder
        from slamlm.units.kmeans import load_kmeans

        path = identity.get("kmeans_path")
        if not path:
            raise ValueError("the mel vocoder needs the k-means centroids, but the unit identity "
                             "has no kmeans_path")
        km = load_kmeans(path)
        if identity.get("kmeans_hash") and km.hash != identity["kmeans_hash"]:
            raise ValueError(f"k-means {path} has hash {km.hash}, not {identity['kmeans_hash']} "
                             f"the model was trained with")
        encoder = load_encoder(identity["encoder"])
        centroids = km.centroids
        if hasattr(encoder, "unit_log_mels"):  # phone units: each phone's mean mel frame
            centroids, encoder = encoder.unit_log_mels(centroids), encoder.mel
        self.inverter = MelInverter(centroids, encoder, n_iter=n_iter)
        self.sample_rate = self.inverter.sample_rate
        self.name = "mel"

    def __call__(self, units: np.ndarray, durations: np.ndarray | None = None,
                 reference: np.ndarray | None = None) -> np.ndarray:
        return self.inverter(units, durations, reference=reference)


def load_vocoder(spec: str | None, extractor_identity: dict[str, Any],
                 device: str | torch.device = "cpu", speaker_wav: str | Path | None = None
                 ) -> HiFiGANVocoder | MelVocoder:
    """``"mel"``, ``"hifigan:PATH"`` or ``"auto"`` -> a vocoder for these units;
    ``speaker_wav``: the voice for a speaker-conditioned HiFi-GAN (required by one)."""
    spec = spec or "auto"
    encoder = str(extractor_identity.get("encoder") or "")
    is_mel = encoder == "mel" or encoder.startswith(("mel:", "phones:"))
    if spec == "auto":
        if not is_mel:
            raise ValueError(f"units from {encoder!r} need a unit HiFi-GAN: pass --vocoder "
                             f"hifigan:PATH (a g_XXXXXXXX checkpoint with config.json beside it)")
        spec = "mel"
    if spec == "mel":
        if not is_mel:
            raise ValueError(f"--vocoder mel inverts mel units only; these units come from "
                             f"{encoder!r}: pass --vocoder hifigan:PATH")
        if speaker_wav:
            raise ValueError("--speaker-wav needs a speaker-conditioned hifigan:PATH vocoder; "
                             "the mel inverse has no speaker input")
        return MelVocoder(extractor_identity)
    if spec.startswith("hifigan:"):
        k = extractor_identity.get("k")
        voc = HiFiGANVocoder(spec[len("hifigan:"):], device=device,
                             n_units=int(k) if k else None, speaker_wav=speaker_wav)
        if voc.speaker_conditioned and voc.speaker is None:
            raise ValueError(f"{spec} is a speaker-conditioned vocoder (embedder "
                             f"{voc.embedder.get('name')}): pass --speaker-wav PATH, a recording "
                             f"of the voice to speak with")
        return voc
    raise ValueError(f"unknown vocoder {spec!r}: use mel, hifigan:PATH or auto")
