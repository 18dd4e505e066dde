"""Synthetic modelling benchmarks in the real layouts, so the same eval readers score both.

``out/``:
    lexical/dev/*.wav + gold.csv        sWUGGY-like (id,filename,voice,frequency,word,phones,length,correct)
    syntactic/dev/*.wav + gold.csv      sBLIMP-like (filename,type,subtype,id,voice,correct,transcription)
    sSC/<i>_correct.wav, <i>_wrong.wav + pairs.jsonl   wrong ending: same cast, broken plot
    tSC/<i>_correct.wav, <i>_wrong.wav + pairs.jsonl   wrong ending: from another story/topic
    salmon/{speaker,gender}_consistency/sample_<i>_<0|1>.wav   1 switches voice mid-utterance
    texts.jsonl                         every utterance: bench, id, path, text, voice, correct
                                        (+ words [[word, start_s, end_s], ...] for sSC/tSC)

Disjoint from training stories: every sentence names a character from the lexicon's
``heldout_names`` (never used by the story grammar) and items draw from their own seed
streams ``Random(f"bench/<name>/{seed}/{i}")``. sWUGGY items are single words (not checked).

Example:
    >>> run_benchmarks(BenchConfig(out="data/bench", n=100))   # doctest: +SKIP
"""

from __future__ import annotations

import csv
import io
import logging
import random
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from slamlm.synth import bench_items as items
from slamlm.synth.corpus import Job, pick_voice, render
from slamlm.synth.tts import DEFAULT_VOICES, VOICE_GENDER, Voice

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BenchConfig:
    """``slam synth benchmarks`` settings (``n`` items per benchmark)."""

    out: str = "bench"
    n: int = 100
    seed: int = 0
    voices: tuple[str, ...] = DEFAULT_VOICES
    voices_per_item: int = 2
    workers: int = 2
    backend: str = "espeak"
    benchmarks: tuple[str, ...] = ("lexical", "syntactic", "sSC", "tSC", "salmon")
    strict: bool = False


def slug(voice: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", voice).strip("-")


def _voices_for(key: str, cfg: BenchConfig) -> list[Voice]:
    r = random.Random(key)
    names = r.sample(list(cfg.voices), min(cfg.voices_per_item, len(cfg.voices)))
    return [Voice(v) for v in names]


def _zr_jobs(kind: str, cfg: BenchConfig, root: Path) -> tuple[list[Job], list[dict]]:
    """Jobs + gold rows of the lexical or syntactic set."""
    folder = root / kind / "dev"
    jobs, rows = [], []
    make = items.wuggy_items if kind == "lexical" else items.blimp_items
    for it in make(cfg.n, cfg.seed):
        for v in _voices_for(f"bench/{kind}/voices/{cfg.seed}/{it['id']}", cfg):
            for correct, text in ((1, it["good"]), (0, it["bad"])):
                fn = f"{it['id']}_{slug(v.name)}_{correct}"
                row = {"id": it["id"], "filename": fn, "voice": v.name, "correct": correct}
                if kind == "lexical":
                    row.update(frequency=it["frequency"], word=text,
                               phones=items.phones(text), length=len(items.phones(text).split()))
                else:
                    row.update(type=it["type"], subtype=it["subtype"], transcription=text)
                rows.append(row)
                jobs.append(Job(fn, text, v, str(folder / f"{fn}.wav"),
                                f"{kind}/dev/{fn}.wav", (("bench", kind), ("correct", correct))))
    return jobs, rows


TEXT_KEYS = ("bench", "id", "path", "text", "voice", "correct")  # + "words" for StoryCloze
LEX_COLS = ["id", "filename", "voice", "frequency", "word", "phones", "length", "correct"]
SYN_COLS = ["filename", "type", "subtype", "id", "voice", "correct", "transcription"]


def _write_gold(path: Path, cols: list[str], rows: list[dict]) -> None:
    from slamlm.io import atomic_write_text

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def _cloze_jobs(kind: str, cfg: BenchConfig, root: Path) -> tuple[list[Job], list[dict]]:
    jobs, pairs = [], []
    for i, it in enumerate(items.cloze_items(cfg.n, cfg.seed, topic=(kind == "tSC"))):
        v = pick_voice(f"bench/{kind}/voice/{cfg.seed}/{i}", cfg.voices, 175, 15, 50, 10)
        sides = {}
        for name, ending in (("correct", it["good"]), ("wrong", it["bad"])):
            rel = f"{i}_{name}.wav"
            text = f"{it['context']} {ending}"
            sides[name] = rel
            jobs.append(Job(f"{kind}/{i}_{name}", text, v, str(root / kind / rel),
                            f"{kind}/{rel}", (("bench", kind), ("correct", int(name == "correct")))))
        pairs.append({"id": str(i), "positive": sides["correct"], "negative": sides["wrong"],
                      "group": {"plot": it["plot"]}})
    return jobs, pairs


def _salmon_jobs(cfg: BenchConfig, root: Path) -> tuple[list[Job], list[tuple]]:
    """Half-utterance jobs (into ``_parts``) and how to join them."""
    male = [v for v in cfg.voices if VOICE_GENDER.get(v) == "m"] or ["en-us", "en-us+m3"]
    female = [v for v in cfg.voices if VOICE_GENDER.get(v) == "f"] or ["en-us+f3", "en+f2"]
    jobs, joins = [], []
    for part in ("speaker_consistency", "gender_consistency"):
        for i, (first, second) in enumerate(items.salmon_sentences(cfg.n, cfg.seed, part)):
            r = random.Random(f"bench/salmon/{part}/{cfg.seed}/{i}")
            g = r.choice([male, female])
            a = r.choice(g)
            if part == "gender_consistency":
                b = r.choice(female if g is male else male)
            else:
                b = r.choice([v for v in g if v != a] or g)
                b_pitch = 50 + r.choice([-20, 20]) if b == a else 50
            va = Voice(a)
            vb = Voice(b) if part == "gender_consistency" else Voice(b, 175, b_pitch)
            base = f"_parts/{part}/{i}"
            for tag, text, v in (("a", first, va), ("b0", second, va), ("b1", second, vb)):
                jobs.append(Job(f"{base}_{tag}", text, v, str(root / f"{base}_{tag}.wav"),
                                f"{base}_{tag}.wav"))
            for label, tail in ((0, "b0"), (1, "b1")):
                joins.append((f"salmon/{part}/sample_{i}_{label}.wav", f"{base}_a.wav",
                              f"{base}_{tail}.wav", f"{first} {second}",
                              f"{va.name}|{(va if label == 0 else vb).name}", label))
    return jobs, joins


def _join_salmon(root: Path, joins: list[tuple], texts: list[dict]) -> None:
    from slamlm.audio import load_audio, save_audio

    gap = np.zeros(int(0.15 * 16000), np.float32)
    for rel, a, b, text, voice, label in joins:
        wav = np.concatenate([load_audio(root / a), gap, load_audio(root / b)])
        save_audio(root / rel, wav, 16000)
        texts.append({"bench": "salmon", "id": rel[:-4], "path": rel, "text": text,
                      "voice": voice, "correct": 1 - label})
    shutil.rmtree(root / "_parts", ignore_errors=True)


def run_benchmarks(cfg: BenchConfig) -> Path:
    """Write all benchmark folders under ``cfg.out`` (rebuilt in a temp dir, then renamed)."""
    from slamlm.config import dump_config
    from slamlm.io import FailureLog, atomic_dir, write_jsonl

    out = Path(cfg.out)
    with atomic_dir(out) as tmp:
        jobs, texts, golds, manifests, joins = [], [], {}, {}, []
        for kind in cfg.benchmarks:
            if kind in ("lexical", "syntactic"):
                j, rows = _zr_jobs(kind, cfg, tmp)
                golds[kind] = rows
            elif kind in ("sSC", "tSC"):
                j, manifests[kind] = _cloze_jobs(kind, cfg, tmp)
            elif kind == "salmon":
                j, joins = _salmon_jobs(cfg, tmp)
            else:
                raise ValueError(f"unknown benchmark {kind!r}; choose from {BenchConfig.benchmarks}")
            jobs += j
        failures = FailureLog(tmp / "failures.jsonl", stage="synth-benchmarks", strict=True)
        for rec in render(jobs, cfg.workers, cfg.backend, desc="synth benchmarks"):
            if "error" in rec:  # a benchmark with a missing side is unusable: stop
                failures.add(rec["id"], rec["path"], rec["error"])
            if not rec["path"].startswith("_parts/"):
                keys = TEXT_KEYS + (("words",) if rec.get("bench") in ("sSC", "tSC") else ())
                texts.append({k: rec[k] for k in keys})
        for kind, rows in golds.items():
            _write_gold(tmp / kind / "dev" / "gold.csv", LEX_COLS if kind == "lexical" else SYN_COLS,
                        rows)
        for kind, pairs in manifests.items():
            write_jsonl(tmp / kind / "pairs.jsonl", pairs)
        if joins:
            _join_salmon(tmp, joins, texts)
        write_jsonl(tmp / "texts.jsonl", texts)
        dump_config(cfg, tmp / "config.yaml")
    log.info("benchmarks: wrote %s (%d utterances)", out, len(texts))
    return out
