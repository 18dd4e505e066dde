"""Spoken story corpora: text -> TTS -> 16 kHz audio + ``manifest.jsonl`` with word timings.

Layout of ``out``::

    audio/0000/story_0000000.flac ...   (one folder per 1000 items)
    manifest.jsonl      {"id", "path", "text", "voice", "words", "duration"} sorted by id;
                        espeak-ng also gives "phones" ([[phone, start_s, end_s], ...])
    config.yaml         the resolved SynthConfig
    failures.jsonl      items that could not be spoken (the job goes on; --strict stops)

Resumable: records are appended to ``manifest.partial.jsonl`` as they finish (audio is
written atomically first), a re-run skips ids already recorded, and the sorted
``manifest.jsonl`` is written at the end. Deterministic: item ``i`` gets its text from
``story_text(i, seed)`` and its voice, rate and pitch from ``Random(f"voice/{seed}/{i}")``;
audio is byte-identical across runs (see ``espeak.py`` on isolation).

Example:
    >>> cfg = SynthConfig(out="run/synth", n=10, workers=1)   # doctest: +SKIP
    >>> run_synth(cfg)                                         # doctest: +SKIP
    PosixPath('run/synth/manifest.jsonl')
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slamlm.synth.tts import DEFAULT_VOICES, Voice

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SynthConfig:
    """``slam synth stories`` settings."""

    out: str = "synth"
    n: int = 1000
    seed: int = 0
    voices: tuple[str, ...] = DEFAULT_VOICES  # espeak-ng voices, any language: es,es+f3 (variants +f3/+m3 work with every language)
    voice: str | None = None  # one voice for every item (overrides voices), e.g. es, hi, ru+f3
    text: str | None = None  # user text (builtin:es/stories.txt, .txt paragraphs, .jsonl "text", or a corpus: parquet/HF dataset, LibriSpeech folder, tar shards, lhotse cuts) instead of stories
    text_split: str | None = None   # split of a saved HF DatasetDict given as --text
    text_column: str | None = None  # text column of a parquet/HF --text; none: text, transcript, ...
    workers: int = 2
    backend: str = "espeak"
    audio_format: str = "flac"
    rate: int = 175
    rate_jitter: int = 20
    pitch: int = 50
    pitch_jitter: int = 15
    strict: bool = False
    deterministic: bool = True  # fork a pristine espeak-ng per utterance (identical samples)


@dataclass(frozen=True)
class Job:
    """One utterance to speak into ``path`` (absolute), recorded as ``rel``."""

    id: str
    text: str
    voice: Voice
    path: str
    rel: str
    extra: tuple = ()


def resolve_voices(voices: Iterable[str], voice: str | None, backend: str) -> tuple[str, ...]:
    """The voices to use (``voice`` overrides ``voices``), each checked against espeak-ng's
    voice list (``ValueError`` naming close names) when the backend is espeak."""
    names = (voice,) if voice else tuple(voices)
    if not names:
        raise ValueError("no voices given: pass --voice es or --voices es,es+f3")
    if backend == "espeak":
        from slamlm.synth.espeak import validate_voice

        for v in names:
            validate_voice(v)
    return names


def pick_voice(key: str, voices: Iterable[str], rate=175, rate_jitter=20, pitch=50,
               pitch_jitter=15) -> Voice:
    """Deterministic voice + rate + pitch for ``key``."""
    r = random.Random(key)
    name = r.choice(list(voices))
    return Voice(name, rate + r.randint(-rate_jitter, rate_jitter),
                 pitch + r.randint(-pitch_jitter, pitch_jitter))


_BACKEND: Any = None


def _make_backend(backend: str, deterministic: bool = True) -> Any:
    from slamlm.synth.tts import get_backend

    return get_backend(backend, isolate=deterministic) if backend == "espeak" else get_backend(backend)


def _worker_init(backend: str, deterministic: bool = True) -> None:
    global _BACKEND
    _BACKEND = _make_backend(backend, deterministic)


def speak_job(job: Job, backend: Any = None) -> dict[str, Any]:
    """Speak one job, write its audio, return the manifest record (or ``{"error"}``)."""
    from slamlm.audio import save_audio

    tts = backend or _BACKEND
    try:
        phones = None
        if hasattr(tts, "synthesize_phones"):  # espeak-ng: phone timings too
            wav, sr, words, phones = tts.synthesize_phones(job.text, job.voice)
        else:
            wav, sr, words = tts.synthesize(job.text, job.voice)
        save_audio(job.path, wav, sr)
    except Exception as e:  # noqa: BLE001 - recorded in failures.jsonl
        return {"id": job.id, "path": job.rel, "error": f"{type(e).__name__}: {e}"}
    rec = {"id": job.id, "path": job.rel, "text": job.text, "voice": job.voice.name,
           "rate": job.voice.rate, "pitch": job.voice.pitch, "words": words,
           "duration": round(len(wav) / sr, 4)}
    if phones is not None:
        rec["phones"] = phones
    rec.update(dict(job.extra))
    return rec


def render(jobs: list[Job], workers: int = 1, backend: str = "espeak",
           desc: str = "synth", deterministic: bool = True) -> Iterator[dict[str, Any]]:
    """Speak ``jobs`` (in worker processes when ``workers > 1``), yielding records in order."""
    from tqdm import tqdm

    if not jobs:
        return
    if workers <= 1:
        tts = _make_backend(backend, deterministic)
        for job in tqdm(jobs, desc=desc, unit="utt", disable=len(jobs) < 50):
            yield speak_job(job, tts)
        return
    ctx = mp.get_context("spawn")  # a fresh engine per worker (espeak-ng has global state)
    with ctx.Pool(workers, initializer=_worker_init, initargs=(backend, deterministic)) as pool:
        chunk = max(1, min(16, len(jobs) // (workers * 8)))
        it = pool.imap(speak_job, jobs, chunksize=chunk)
        yield from tqdm(it, total=len(jobs), desc=desc, unit="utt", disable=len(jobs) < 50)


def story_jobs(cfg: SynthConfig, out: Path) -> list[Job]:
    """All jobs of the corpus (text from the grammar or the user file)."""
    from slamlm.synth.stories import read_user_text, story_text

    if cfg.text:
        from slamlm.synth.pairs import builtin_path

        texts = read_user_text(builtin_path(cfg.text), cfg.text_split, cfg.text_column)
        texts = texts[: cfg.n] if cfg.n > 0 else texts
        prefix = "text"
    else:
        texts = [story_text(i, cfg.seed) for i in range(cfg.n)]
        prefix = "story"
    jobs = []
    voices = resolve_voices(cfg.voices, cfg.voice, cfg.backend)
    for i, text in enumerate(texts):
        rid = f"{prefix}_{i:07d}"
        rel = f"audio/{i // 1000:04d}/{rid}.{cfg.audio_format}"
        voice = pick_voice(f"voice/{cfg.seed}/{i}", voices, cfg.rate, cfg.rate_jitter,
                           cfg.pitch, cfg.pitch_jitter)
        jobs.append(Job(rid, text, voice, str(out / rel), rel))
    return jobs


def _load_done(out: Path) -> dict[str, dict]:
    from slamlm.io import read_jsonl

    done: dict[str, dict] = {}
    for name in ("manifest.jsonl", "manifest.partial.jsonl"):
        if (out / name).exists():
            for r in read_jsonl(out / name, skip_bad=True):
                if (out / r["path"]).is_file():
                    done[r["id"]] = r
    return done


def run_synth(cfg: SynthConfig) -> Path:
    """Build (or finish) the corpus in ``cfg.out``; returns the manifest path."""
    from slamlm.config import dump_config
    from slamlm.io import FailureLog, JsonlAppender, write_jsonl

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    dump_config(cfg, out / "config.yaml")
    jobs = story_jobs(cfg, out)
    done = _load_done(out)
    failures = FailureLog(out / "failures.jsonl", stage="synth", strict=cfg.strict)
    todo = [j for j in jobs if j.id not in done and j.id not in failures.known()]
    log.info("synth: %d items, %d done, %d to speak", len(jobs), len(jobs) - len(todo), len(todo))
    with JsonlAppender(out / "manifest.partial.jsonl") as app:
        for rec in render(todo, cfg.workers, cfg.backend, "synth stories", cfg.deterministic):
            if "error" in rec:
                failures.add(rec["id"], rec["path"], rec["error"])
                continue
            app.write(rec)
            done[rec["id"]] = rec
    wanted = {j.id for j in jobs}
    records = [done[k] for k in sorted(done) if k in wanted]
    manifest = write_jsonl(out / "manifest.jsonl", records)
    (out / "manifest.partial.jsonl").unlink(missing_ok=True)
    hours = sum(r["duration"] for r in records) / 3600
    log.info("synth: wrote %s (%d records, %.2f h audio, %d failures)", manifest, len(records),
             hours, failures.count)
    return manifest
