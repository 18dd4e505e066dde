"""``slam generate``: prompts (audio or units) -> SpeechLM continuation -> vocoder -> wav files.

Outputs in ``out/``: ``wav/<id>.wav`` (the prompt followed by its continuation, vocoded at the
vocoder's rate), ``generations.jsonl`` (id, prompt units, generated units, wav path, sampling
parameters), ``failures.jsonl`` and the resolved ``config.yaml``. Re-running the same command
skips prompts already in ``generations.jsonl``.

Example:
    >>> # cfg = build_config(GenerateConfig, base={"checkpoint": "run/ckpt/step_00001000",
    >>> #                    "out": "run/gen", "prompts": ["a.wav"]})
    >>> # run_generate(cfg)   # -> Path("run/gen")
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from slamlm.corpora.records import read_records
from slamlm.io import FailureLog, JsonlAppender, read_jsonl

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SamplingConfig:
    """Sampling knobs (defaults: the GenPPL protocol, temperature 0.8, top-k 25, 150 tokens)."""

    max_new_tokens: int = 150
    temperature: float = 0.8
    top_k: int = 25
    top_p: float = 1.0
    repetition_penalty: float = 1.0
    seed: int = 0
    batch_size: int = 16


@dataclass(frozen=True)
class GenerateConfig:
    """``slam generate``: checkpoint + prompts -> continuations and wavs in ``out``."""

    checkpoint: str = ""
    out: str = ""
    prompts: list[str] = field(default_factory=list)  # audio files
    prompt_units: str | None = None  # units JSONL (slam units output)
    prompt_seconds: float | None = 3.0  # cut prompts to their first N seconds (None: whole)
    frame_rate: float = 25.0  # unit frames per second, to cut unit prompts
    dedup: bool = True  # the model was trained on deduplicated units (the Slam recipe)
    vocoder: str = "auto"  # mel | hifigan:PATH | auto
    speaker_wav: str = ""  # reference recording of the voice, for a speaker-conditioned vocoder
    device: str = "auto"
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    strict: bool = False  # a bad prompt stops the run
    metrics: bool = False  # also GenPPL + Auto-BLEU (ASR and LM load before generating)
    asr: str = "pocketsphinx"  # pocketsphinx | whisper[:ID or folder] (for metrics)
    lm: str = "smollm2"  # smollm2 | llama | HF folder or hub id (for metrics)


@dataclass
class Prompt:
    id: str
    units: np.ndarray  # deduplicated (or frame-level when dedup is off)
    durations: np.ndarray
    path: str | None = None
    wav: np.ndarray | None = None  # the (cut) prompt audio, used by the mel vocoder for level


def _dedup(units: np.ndarray, enabled: bool) -> tuple[np.ndarray, np.ndarray]:
    from slamlm.units.extractor import dedup

    if enabled:
        return dedup(units)
    return np.asarray(units, dtype=np.int64), np.ones(len(units), dtype=np.int64)


def _unique_ids(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if seen[n] == 1 else f"{n}_{seen[n]}")
    return out


def audio_prompts(cfg: GenerateConfig, extractor: Any, failures: FailureLog) -> list[Prompt]:
    """Load, cut to ``prompt_seconds`` and encode the audio prompts (bad files -> failures)."""
    from slamlm.audio import AudioError, load_audio

    out = []
    ids = _unique_ids([Path(p).stem for p in cfg.prompts])
    for rid, path in zip(ids, cfg.prompts):
        try:
            wav = load_audio(path, min_seconds=extractor.min_seconds)
            if cfg.prompt_seconds:
                wav = wav[: int(cfg.prompt_seconds * 16000)]
            units, durs = _dedup(extractor.encode([wav])[0], cfg.dedup)
        except (AudioError, ValueError, FileNotFoundError) as e:
            failures.add(rid, path, str(e))
            continue
        out.append(Prompt(rid, units, durs, str(path), wav))
    return out


def unit_prompts(cfg: GenerateConfig, failures: FailureLog) -> list[Prompt]:
    """Read prompts from a units JSONL (``id``, ``units``, optional ``durations``)."""
    out = []
    max_frames = int(cfg.prompt_seconds * cfg.frame_rate) if cfg.prompt_seconds else None
    for i, rec in enumerate(read_records(cfg.prompt_units)):
        rid = str(rec.get("id") or rec.get("file_name") or f"line{i + 1}")
        units = np.asarray(rec.get("units") or [], dtype=np.int64)
        durs = rec.get("durations") or rec.get("duration")
        if durs is None:
            units, durs = _dedup(units, cfg.dedup)
        durs = np.asarray(durs, dtype=np.int64)
        if len(durs) != len(units) or not len(units):
            failures.add(rid, cfg.prompt_units, "empty units or units/durations of different lengths")
            continue
        if max_frames:
            keep = max(1, int(np.searchsorted(np.cumsum(durs), max_frames, side="right")))
            units, durs = units[:keep], durs[:keep]
        out.append(Prompt(rid, units, durs, rec.get("path")))
    return out


def gen_durations(prompt: Prompt, n_new: int) -> np.ndarray:
    """Durations for prompt + generated units: the prompt's own, then its mean run length."""
    mean = max(1, int(round(float(prompt.durations.mean())))) if len(prompt.durations) else 1
    return np.concatenate([prompt.durations, np.full(n_new, mean, dtype=np.int64)])


def _vocode_and_record(p: Prompt, new: np.ndarray, vocab: Any, vocoder: Any, out: Path,
                       cfg: GenerateConfig) -> dict[str, Any]:
    from dataclasses import asdict

    from slamlm.audio import save_audio

    gen_units = vocab.decode_units(new)
    units = np.concatenate([p.units, gen_units])
    predict = getattr(getattr(vocoder, "model", None), "dur_predictor", None) is not None
    durs = None if (predict and cfg.dedup) else gen_durations(p, len(gen_units))
    wav = vocoder(units, durs, reference=p.wav)
    wav_path = out / "wav" / f"{p.id}.wav"
    wav_path.parent.mkdir(parents=True, exist_ok=True)
    save_audio(wav_path, wav, vocoder.sample_rate)
    return {"id": p.id, "prompt_path": p.path, "prompt_units": p.units.tolist(),
            "prompt_durations": p.durations.tolist(), "generated_units": gen_units.tolist(),
            "wav": str(wav_path.relative_to(out)), "sample_rate": vocoder.sample_rate,
            "seconds": round(len(wav) / vocoder.sample_rate, 3), "vocoder": vocoder.name,
            "sampling": asdict(cfg.sampling), **({"speaker_wav": cfg.speaker_wav}
                                                  if cfg.speaker_wav else {})}


def _prompt_tokens(prompts: list[Prompt], vocab: Any,
                   failures: FailureLog) -> tuple[list[Prompt], list[np.ndarray]]:
    """``[bos] + units`` per prompt; prompts with units outside the vocabulary -> failures."""
    from slamlm.vocab import VocabError

    kept, tokens = [], []
    for p in prompts:
        try:
            tokens.append(np.concatenate([[vocab.bos_id], vocab.encode_units(p.units, where=p.id)]))
        except VocabError as e:
            failures.add(p.id, p.path, str(e))
            continue
        kept.append(p)
    return kept, tokens


def run_generate(cfg: GenerateConfig) -> Path:
    """Generate a continuation for every prompt; returns the output folder. With
    ``metrics``, the ASR and text LM are loaded first (a missing one fails before any
    generation) and ``genmetrics.json`` is written after."""
    scorers = None
    if cfg.metrics:
        from slamlm.eval.genmetrics import load_scorers

        scorers = load_scorers(cfg.asr, cfg.lm)
    out = _generate(cfg)
    if scorers is not None:
        from slamlm.eval.genmetrics import metrics_for_generations

        metrics_for_generations(out, scorers=scorers)
    return out


def gen_metrics(ckpt: str | Path, prompts: Sequence[str | Path], asr: str = "pocketsphinx",
                lm: str = "smollm2", out: str | Path | None = None, device: str = "cpu",
                **generate: Any) -> dict[str, Any]:
    """Generate from ``prompts`` (audio files) with ``ckpt``, vocode, transcribe and score.

    ``generate`` keys go to :class:`GenerateConfig` (``vocoder``, ``prompt_seconds``,
    ``sampling={...}``); ``out`` defaults to ``<ckpt>/genmetrics``. Returns
    :func:`slamlm.eval.genmetrics.metrics_for_generations`'s result.
    """
    from slamlm.config import build_config
    from slamlm.eval.genmetrics import load_scorers, metrics_for_generations

    out = Path(out) if out else Path(ckpt) / "genmetrics"
    base = {"checkpoint": str(ckpt), "out": str(out), "prompts": [str(p) for p in prompts],
            "device": device, **generate}
    scorers = load_scorers(asr, lm, device)  # fail before generating, not after
    _generate(build_config(GenerateConfig, base=base))
    return metrics_for_generations(out, device=device, scorers=scorers)


def _generate(cfg: GenerateConfig) -> Path:
    import torch

    from slamlm.config import dump_config
    from slamlm.device import resolve_device
    from slamlm.generate.sampling import generate
    from slamlm.generate.vocoder import load_vocoder
    from slamlm.model import load_checkpoint
    from slamlm.units.extractor import UnitExtractor
    from slamlm.vocab import UnitVocab

    if not cfg.checkpoint or not cfg.out:
        raise ValueError("generate needs a checkpoint and --out")
    if bool(cfg.prompts) == bool(cfg.prompt_units):
        raise ValueError("give audio prompts (--prompt a.wav ...) or --prompt-units FILE, not both")
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    dump_config(cfg, out / "config.yaml")
    device = resolve_device(cfg.device)
    model, meta = load_checkpoint(cfg.checkpoint, device=device)
    vocab, identity = UnitVocab.from_dict(meta["vocab"]), meta.get("units") or {}
    failures = FailureLog(out / "failures.jsonl", stage="generate", strict=cfg.strict)
    if cfg.prompts:
        extractor = UnitExtractor.from_identity(identity, device=device)
        prompts = audio_prompts(cfg, extractor, failures)
    else:
        prompts = unit_prompts(cfg, failures)
    gen_path = out / "generations.jsonl"
    done = {str(r["id"]) for r in read_jsonl(gen_path, skip_bad=True)} if gen_path.exists() else set()
    todo = [p for p in prompts if p.id not in done]
    log.info("%d prompts, %d already generated, %d failed", len(prompts), len(done), failures.count)
    if not todo:
        return out
    todo, tokens = _prompt_tokens(todo, vocab, failures)
    if not todo:
        return out
    vocoder = load_vocoder(cfg.vocoder, identity, device=device,
                           speaker_wav=cfg.speaker_wav or None)
    s = cfg.sampling
    with torch.inference_mode():
        new = generate(model, tokens, s.max_new_tokens, s.temperature, s.top_k, s.top_p,
                       s.repetition_penalty, s.seed, vocab=vocab, batch_size=s.batch_size)
        with JsonlAppender(gen_path) as app:
            for p, n in zip(todo, new):
                app.write(_vocode_and_record(p, n, vocab, vocoder, out, cfg))
    log.info("wrote %d generations to %s (%d failures)", len(todo), out, failures.count)
    return out
