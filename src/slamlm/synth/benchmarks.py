"""Synthetic modelling benchmarks in the real layouts, so the same eval readers score both.

``out/``:
    lexical/dev/*.wav + gold.csv        sWUGGY-like (id,filename,voice,frequency,word,phones,length,correct)
    syntactic/dev/*.wav + gold.csv      sBLIMP-like (filename,type,subtype,id,voice,correct,transcription)
    sSC/<i>_correct.wav, <i>_wrong.wav + pairs.jsonl   wrong ending: same cast, broken plot
    tSC/<i>_correct.wav, <i>_wrong.wav + pairs.jsonl   wrong ending: from another story/topic
    salmon/{speaker,gender}_consistency/sample_<i>_<0|1>.wav   1 switches voice mid-utterance
    texts.jsonl                         every utterance: bench, id, path, text, voice, correct
                                        (+ words [[word, start_s, end_s], ...] for sSC/tSC)
    done.json                           version + settings: a re-run with them does nothing
    length_match.jsonl                  per item: bench, id, voiced seconds of the positive and
                                        the negative per voice (pos_s, neg_s), gap_s, options

Length-matched (see ``matching.py``): in each pair both members are spoken by the same voice
at the same rate, and among the item's valid options the one closest in spoken duration is
kept (sWUGGY: same espeak-ng phone count first; with ``match_units``, a ``slam units`` folder,
sWUGGY's and sBLIMP's options nearest in deduplicated unit count under those units first); SALMon's other-speaker half is spoken at the
rate that makes it last as long as the same-speaker half (with ``match_units``: of 5 rates
around that one, the one nearest in units, the sign of the gap left balanced over the items).

Disjoint from training stories: every sBLIMP and SALMon sentence and every story-cloze
context names a character from the lexicon's ``heldout_names`` (never used by the story
grammar), and items draw from their own seed streams ``Random(f"bench/<name>/{seed}/{i}")``.
Story-cloze endings are resolutions of the story grammar (the correct and the wrong one
alike), so both are familiar and only the plot tells them apart. sWUGGY items are single
words (not checked).

Example:
    >>> run_benchmarks(BenchConfig(out="data/bench", n=200))   # doctest: +SKIP
"""

from __future__ import annotations

import csv
import io
import json
import logging
import random
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from slamlm.synth import bench_items as items
from slamlm.synth.corpus import Job, pick_voice, render, resolve_voices
from slamlm.synth.matching import Measurer, match_items, match_rates, match_rates_in_units
from slamlm.synth.phonotactics import PhoneBigram
from slamlm.synth.tts import DEFAULT_VOICES, Voice, voice_gender

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BenchConfig:
    """``slam synth benchmarks`` settings (``n`` items per benchmark: sWUGGY, sBLIMP and
    SALMon give 2 pairs per item, sSC and tSC one)."""

    out: str = "bench"
    n: int = 200
    seed: int = 0
    voices: tuple[str, ...] = DEFAULT_VOICES  # espeak-ng voices, any language (es,es+f3)
    voice: str | None = None  # one voice for every item (overrides voices), e.g. es
    pairs: tuple[str, ...] = ()  # user pair files KIND=FILE (lexical=words.tsv, syntactic=sentences.tsv; see synth/pairs.py): only those benchmarks are built, in --voice's language
    voices_per_item: int = 2
    workers: int = 2
    backend: str = "espeak"
    benchmarks: tuple[str, ...] = ("lexical", "syntactic", "sSC", "tSC", "salmon")
    strict: bool = False
    match_lengths: bool = True  # keep the option closest in spoken duration (see matching.py)
    rate_jitter: int = 15  # story-cloze items: rate 175 +- this (words/min), drawn per item
    pitch_jitter: int = 10  # story-cloze items: pitch 50 +- this, drawn per item
    top_words: int = 0  # sWUGGY words from the N most frequent content words of the stories (0: all)
    # a `slam units` folder (or its identity.json): the options of the unit_benchmarks are then
    # matched first in deduplicated unit count under those units, in every voice of the item
    match_units: str = ""
    # (not the story clozes: an ending's units alone do not predict its units in context)
    unit_benchmarks: tuple[str, ...] = ("lexical", "syntactic")
    unit_shortlist: int = 3  # sBLIMP: options spoken for their units, nearest in phone count
    nonwords: int = 16  # sWUGGY: non-word candidates per word (the best matched is kept)
    sizes: tuple[str, ...] = ()  # items of some benchmarks, KIND=N (lexical=120); others: n


def slug(voice: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", voice).strip("-")


def items_of(kind: str, cfg: BenchConfig) -> int:
    """Items of benchmark ``kind``: its ``sizes`` entry (``KIND=N``), else ``cfg.n``.

    Example:
        >>> items_of("lexical", BenchConfig(n=60, sizes=("lexical=120",)))
        120
    """
    for spec in cfg.sizes:
        name, sep, num = spec.partition("=")
        if not sep or name not in BenchConfig.benchmarks or not num.isdigit() or int(num) < 1:
            raise ValueError(f"sizes {spec!r}: use KIND=N with KIND one of "
                             f"{', '.join(BenchConfig.benchmarks)} and N >= 1 (lexical=120)")
        if name == kind:
            return int(num)
    return cfg.n


def _voices(cfg: BenchConfig) -> tuple[str, ...]:
    return (cfg.voice,) if cfg.voice else tuple(cfg.voices)


def _voices_for(key: str, cfg: BenchConfig) -> list[Voice]:
    r = random.Random(key)
    voices = _voices(cfg)
    names = r.sample(list(voices), min(cfg.voices_per_item, len(voices)))
    return [Voice(v) for v in names]


def _phone_voice(cfg: BenchConfig) -> str:
    """The voice whose phonemes sWUGGY counts: the first voice's language (variant dropped);
    every English voice counts in en-us, as before other languages came."""
    base = _voices(cfg)[0].partition("+")[0]
    return "en-us" if base.lower().startswith("en") else base


def _items(kind: str, cfg: BenchConfig) -> list[dict]:
    """The user's pairs (``--pairs``) when given for ``kind``, else the English grammar's."""
    from slamlm.synth.pairs import parse_pairs_arg, read_pairs

    user = parse_pairs_arg(cfg.pairs)
    if kind in user:
        return read_pairs(kind, user[kind])
    if kind == "lexical":
        return items.wuggy_items(items_of(kind, cfg), cfg.seed, k=cfg.nonwords,
                                 top_words=cfg.top_words)
    return items.blimp_items(items_of(kind, cfg), cfg.seed)


def _zr_jobs(kind: str, cfg: BenchConfig, root: Path, meas: Measurer
             ) -> tuple[list[Job], list[dict], list[dict]]:
    """Jobs, gold rows and length-match records of the lexical or syntactic set."""
    from slamlm.synth.pairs import parse_pairs_arg

    folder = root / kind / "dev"
    jobs, rows = [], []
    its = _items(kind, cfg)
    voices = [_voices_for(f"bench/{kind}/voices/{cfg.seed}/{it['id']}", cfg) for it in its]
    builtin = kind == "lexical" and kind not in parse_pairs_arg(cfg.pairs)
    # matched in the item's first voice (half the cost of all voices, ~10% larger gaps)
    matched = _match(kind, cfg, its, [v[:1] for v in voices], meas, phones_first=kind == "lexical",
                     phonotactics=_train_phonotactics(meas, _phone_voice(cfg)) if builtin else None,
                     unit_voices=voices if meas.units and kind in cfg.unit_benchmarks else None)
    pv = _phone_voice(cfg)
    phon = (meas.phonemes(([it["good"], it["bad"]] for it in its), pv) or {}
            ) if kind == "lexical" else {}
    for it, vs in zip(its, voices):
        for v in vs:
            for correct, text in ((1, it["good"]), (0, it["bad"])):
                fn = f"{it['id']}_{slug(v.name)}_{correct}"
                row = {"id": it["id"], "filename": fn, "voice": v.name, "correct": correct}
                if kind == "lexical":
                    ph = phon.get(text) or items.phones(text).split()
                    row.update(frequency=it["frequency"], word=text, phones=" ".join(ph),
                               length=len(ph))
                else:
                    row.update(type=it["type"], subtype=it["subtype"], transcription=text)
                rows.append(row)
                jobs.append(Job(fn, text, v, str(folder / f"{fn}.wav"),
                                f"{kind}/dev/{fn}.wav", (("bench", kind), ("correct", correct))))
    return jobs, rows, matched


def _train_phonotactics(meas: Measurer, voice: str) -> PhoneBigram | None:
    """Phone bigram of the training stories' words (espeak-ng phonemes, token-weighted)."""
    counts = items.train_word_counts()
    ph = meas.phonemes([sorted(counts)], voice)
    if ph is None:
        return None
    return PhoneBigram.fit({tuple(ph[w]): c for w, c in counts.items() if ph.get(w)})


def _match(kind: str, cfg: BenchConfig, its: list[dict], voices: list[list[Voice]],
           meas: Measurer, phones_first: bool = False, phonotactics: PhoneBigram | None = None,
           unit_voices: list[list[Voice]] | None = None) -> list[dict]:
    if not cfg.match_lengths:
        return []
    recs = match_items(its, voices, meas, f"bench/{kind}/sign/{cfg.seed}", phones_first,
                       phone_voice=_phone_voice(cfg), phonotactics=phonotactics,
                       unit_voices=unit_voices, shortlist=cfg.unit_shortlist)
    return [{"bench": kind, **r} for r in recs]


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


def _cloze_jobs(kind: str, cfg: BenchConfig, root: Path, meas: Measurer
                ) -> tuple[list[Job], list[dict], list[dict]]:
    """Jobs, pairs manifest and length-match records (matched on the endings) of sSC / tSC."""
    jobs, pairs = [], []
    its = items.cloze_items(items_of(kind, cfg), cfg.seed, topic=(kind == "tSC"))
    voices = [pick_voice(f"bench/{kind}/voice/{cfg.seed}/{i}", _voices(cfg), 175,
                         cfg.rate_jitter, 50, cfg.pitch_jitter)
              for i in range(len(its))]
    for i, it in enumerate(its):
        it["id"] = str(i)
    matched = _match(kind, cfg, its, [[v] for v in voices], meas,  # units: of the endings alone
                     unit_voices=[[v] for v in voices] if meas.units and kind in cfg.unit_benchmarks
                     else None)
    for i, (it, v) in enumerate(zip(its, voices)):
        sides = {}
        for name, ending in (("correct", it["good"]), ("wrong", it["bad"])):
            rel = f"{i}_{name}.wav"
            text = f"{it['context']} {ending}"
            sides[name] = rel
            jobs.append(Job(f"{kind}/{i}_{name}", text, v, str(root / kind / rel),
                            f"{kind}/{rel}", (("bench", kind), ("correct", int(name == "correct")))))
        pairs.append({"id": str(i), "positive": sides["correct"], "negative": sides["wrong"],
                      "group": {"plot": it["plot"]}})
    return jobs, pairs, matched


def _salmon_voices(cfg: BenchConfig, part: str, i: int) -> tuple[Voice, Voice]:
    """(first speaker, other speaker) of SALMon item ``i``: another voice of the same gender
    (or the same voice at another pitch) for speaker_consistency, the other gender else."""
    voices = _voices(cfg)
    lang = voices[0].partition("+")[0]  # missing gender: the first voice's language + variant
    male = [v for v in voices if voice_gender(v) == "m"] or [lang, f"{lang}+m3"]
    female = [v for v in voices if voice_gender(v) == "f"] or [f"{lang}+f3", f"{lang}+f2"]
    r = random.Random(f"bench/salmon/{part}/{cfg.seed}/{i}")
    g = r.choice([male, female])
    a = r.choice(g)
    if part == "gender_consistency":
        return Voice(a), Voice(r.choice(female if g is male else male))
    b = r.choice([v for v in g if v != a] or g)
    return Voice(a), Voice(b, 175, 50 + r.choice([-20, 20]) if b == a else 50)


def _salmon_jobs(cfg: BenchConfig, root: Path, meas: Measurer
                 ) -> tuple[list[Job], list[tuple], list[dict]]:
    """Half-utterance jobs (into ``_parts``), how to join them, and length-match records."""
    jobs, joins, matched = [], [], []
    for part in ("speaker_consistency", "gender_consistency"):
        texts = items.salmon_sentences(items_of("salmon", cfg), cfg.seed, part)
        pairs = [_salmon_voices(cfg, part, i) for i in range(len(texts))]
        if cfg.match_lengths:  # the other speaker's half lasts as long as the same speaker's
            others = match_rates([(t[1], a, b) for t, (a, b) in zip(texts, pairs)], meas)
            if meas.units is not None:  # then in units: the rate whose unit count is nearest
                others = match_rates_in_units(
                    [(t[1], a, b) for t, (a, _), b in zip(texts, pairs, others)], meas,
                    f"bench/salmon/{part}/sign/{cfg.seed}")
            pairs = [(a, b) for (a, _), b in zip(pairs, others)]
            matched += [{"bench": "salmon", "id": f"{part}/sample_{i}",
                         "pos_s": [meas.seconds(t[1], a)], "neg_s": [meas.seconds(t[1], b)],
                         "gap_s": round(meas.seconds(t[1], a) - meas.seconds(t[1], b), 4),
                         "rate": b.rate,
                         **({"pos_units": [meas.unit_count(t[1], a)],
                             "neg_units": [meas.unit_count(t[1], b)]} if meas.units is not None else {})}
                        for i, (t, (a, b)) in enumerate(zip(texts, pairs))]
        for i, ((first, second), (va, vb)) in enumerate(zip(texts, pairs)):
            base = f"_parts/{part}/{i}"
            for tag, text, v in (("a", first, va), ("b0", second, va), ("b1", second, vb)):
                jobs.append(Job(f"{base}_{tag}", text, v, str(root / f"{base}_{tag}.wav"),
                                f"{base}_{tag}.wav"))
            for label, tail in ((0, "b0"), (1, "b1")):
                joins.append((f"salmon/{part}/sample_{i}_{label}.wav", f"{base}_a.wav",
                              f"{base}_{tail}.wav", f"{first} {second}",
                              f"{va.name}|{(va if label == 0 else vb).name}", label))
    return jobs, joins, matched


def _join_salmon(root: Path, joins: list[tuple], texts: list[dict]) -> None:
    from slamlm.audio import load_audio, save_audio

    gap = np.zeros(int(0.15 * 16000), np.float32)
    for rel, a, b, text, voice, label in joins:
        wav = np.concatenate([load_audio(root / a), gap, load_audio(root / b)])
        save_audio(root / rel, wav, 16000)
        texts.append({"bench": "salmon", "id": rel[:-4], "path": rel, "text": text,
                      "voice": voice, "correct": 1 - label})
    shutil.rmtree(root / "_parts", ignore_errors=True)


def _all_jobs(cfg: BenchConfig, tmp: Path, meas: Measurer) -> dict[str, Any]:
    """Every benchmark's jobs, gold rows, manifests, SALMon joins and length-match records."""
    from slamlm.synth.pairs import parse_pairs_arg

    got: dict[str, Any] = {"jobs": [], "golds": {}, "manifests": {}, "joins": [], "matched": []}
    user = parse_pairs_arg(cfg.pairs)  # user pairs: only their benchmarks (the rest is English)
    for kind in (tuple(user) if user else cfg.benchmarks):
        if kind in ("lexical", "syntactic"):
            j, got["golds"][kind], m = _zr_jobs(kind, cfg, tmp, meas)
        elif kind in ("sSC", "tSC"):
            j, got["manifests"][kind], m = _cloze_jobs(kind, cfg, tmp, meas)
        elif kind == "salmon":
            j, got["joins"], m = _salmon_jobs(cfg, tmp, meas)
        else:
            raise ValueError(f"unknown benchmark {kind!r}; choose from {BenchConfig.benchmarks}")
        got["jobs"] += j
        got["matched"] += m
    return got


def units_identity(path: str | Path) -> dict[str, Any]:
    """The identity (encoder + k-means) of a ``slam units`` folder or of its identity.json."""
    p = Path(path)
    f = p / "identity.json" if p.is_dir() else p
    try:
        ident = json.loads(f.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"match_units: cannot read the units identity {f}: {e} (give a "
                         f"`slam units` output folder or its identity.json)") from e
    if not isinstance(ident, dict) or "encoder" not in ident or not ident.get("kmeans_hash"):
        raise ValueError(f"match_units: {f} is not a units identity with a k-means (it needs "
                         f"'encoder' and 'kmeans_hash'; `slam units` writes one)")
    return ident


def unit_counter(path: str | Path) -> Callable[[list[np.ndarray]], list[np.ndarray]]:
    """Waveforms -> their deduplicated units under the units of ``path`` (a ``slam units``
    folder or identity.json), as the eval will tokenise the files (the count is the length).

    Example:
        >>> count = unit_counter("run/units")                 # doctest: +SKIP
        >>> [len(u) for u in count([np.zeros(16000, np.float32)])]  # doctest: +SKIP
        [1]
    """
    from slamlm.units.extractor import UnitExtractor, dedup

    ex = UnitExtractor.from_identity(units_identity(path), device="cpu")

    def count(wavs: list[np.ndarray]) -> list[np.ndarray]:
        return [dedup(u)[0] for u in ex.encode(wavs)]

    return count


def _count_files(counter: Callable[[list[np.ndarray]], list[np.ndarray]], paths: list[Path],
                 file_units: dict[str, list[int]], threads: int = 1) -> None:
    """Units of written files (read as the eval reads them) into ``file_units`` by sha1, in
    ``threads`` torch threads (0: as set); empties ``paths``. A file that cannot be read is
    left to the eval."""
    import hashlib

    from slamlm.audio import AudioError, load_audio_bytes
    from slamlm.synth.matching import torch_threads

    todo = [p for p in dict.fromkeys(paths) if p.is_file()]
    paths.clear()
    wavs, keys = [], []
    for p in todo:  # each file read once: decoded and hashed from the same bytes
        data = p.read_bytes()
        try:
            wavs.append(load_audio_bytes(data, str(p)))
        except AudioError:
            continue
        keys.append(hashlib.sha1(data).hexdigest())
    if wavs:
        with torch_threads(threads):
            for key, units in zip(keys, counter(wavs)):
                file_units[key] = [int(u) for u in units]


def write_unit_seeds(folder: Path, texts: list[dict[str, Any]], identity: dict[str, Any],
                     file_units: dict[str, list[int]]) -> int:
    """``units-<extractor hash>.jsonl`` in ``folder``: the deduplicated units the matching
    counted for each written file that holds exactly the waveform it counted (same sha1), in
    the eval's unit-cache format, so ``slam eval`` does not encode those files again (it
    reads the file of a benchmark's folder or its parent, keyed by content). Returns the
    number of files covered.
    """
    from slamlm.io import file_sha1, write_jsonl
    from slamlm.units.identity import unit_cache_name

    rows = []
    for rec in texts:
        sha1 = file_sha1(folder / rec["path"])
        if sha1 in file_units:
            rows.append({"sha1": sha1, "path": rec["path"], "units": file_units[sha1]})
    if rows:
        write_jsonl(folder / unit_cache_name(identity), rows)
    return len(rows)


# Bump when item design or matching changes what a config produces (a re-run then rebuilds).
BENCH_VERSION = 5  # 3: sWUGGY non-words matched on phone transitions (Wuggy); 4: sBLIMP
# and story cloze test the story grammar's own rules and plots; 5: with match_units, SALMon's
# other speaker speaks at the rate nearest in units


def _done_marker(cfg: BenchConfig) -> dict[str, Any]:
    import hashlib

    from slamlm.config import to_dict
    from slamlm.synth.pairs import parse_pairs_arg

    marker = {"version": BENCH_VERSION, "config": {k: v for k, v in to_dict(cfg).items()
                                                   if k not in ("out", "workers", "match_units")}}
    if cfg.match_units:  # other units (a re-fit k-means, a retrained encoder) rebuild
        marker["units"] = {k: v for k, v in units_identity(cfg.match_units).items()
                           if k != "kmeans_path"}
    if cfg.pairs:  # an edited pair file rebuilds
        marker["pairs_sha1"] = {k: hashlib.sha1(p.read_bytes()).hexdigest()
                                for k, p in parse_pairs_arg(cfg.pairs).items()}
    return marker


def is_done(cfg: BenchConfig) -> bool:
    """True when ``cfg.out`` holds benchmarks made with these settings by this version."""
    marker = Path(cfg.out) / "done.json"
    try:
        return json.loads(marker.read_text()) == json.loads(json.dumps(_done_marker(cfg)))
    except (OSError, json.JSONDecodeError):
        return False


def run_benchmarks(cfg: BenchConfig) -> Path:
    """Write all benchmark folders under ``cfg.out`` (rebuilt in a temp dir, then renamed);
    a finished folder with the same settings (``done.json``) is left as it is."""
    from slamlm.config import dump_config
    from slamlm.io import FailureLog, atomic_dir, atomic_write_json, write_jsonl

    out = Path(cfg.out)
    resolve_voices(cfg.voices, cfg.voice, cfg.backend)  # unknown voices fail before any work
    for kind in cfg.benchmarks:
        items_of(kind, cfg)  # a bad sizes entry fails before any work
    if is_done(cfg):
        log.info("benchmarks: %s is complete for these settings; nothing to do", out)
        return out
    with atomic_dir(out) as tmp:
        counter = unit_counter(cfg.match_units) if cfg.match_units else None
        with Measurer(cfg.backend, cfg.workers, units=counter) as meas:
            got = _all_jobs(cfg, tmp, meas)
        texts: list[dict] = []
        failures = FailureLog(tmp / "failures.jsonl", stage="synth-benchmarks", strict=True)
        pending: list[Path] = []  # written files the matching did not count: counted here,
        # 1 thread, while the workers speak the next ones (what the eval would encode)
        for rec in render(got["jobs"], cfg.workers, cfg.backend, desc="synth benchmarks"):
            if "error" in rec:  # a benchmark with a missing side is unusable: stop
                failures.add(rec["id"], rec["path"], rec["error"])
            if not rec["path"].startswith("_parts/"):
                keys = TEXT_KEYS + (("words",) if rec.get("bench") in ("sSC", "tSC") else ())
                texts.append({k: rec[k] for k in keys})
                if counter is not None and rec.get("bench") not in cfg.unit_benchmarks:
                    pending.append(tmp / rec["path"])
                    if len(pending) >= 32:
                        _count_files(counter, pending, meas.file_units)
        for kind, rows in got["golds"].items():
            _write_gold(tmp / kind / "dev" / "gold.csv", LEX_COLS if kind == "lexical" else SYN_COLS,
                        rows)
        for kind, pairs in got["manifests"].items():
            write_jsonl(tmp / kind / "pairs.jsonl", pairs)
        if got["joins"]:
            _join_salmon(tmp, got["joins"], texts)
            pending += [tmp / rel for rel, *_ in got["joins"]]
        if counter is not None:  # the workers are done: all threads
            _count_files(counter, pending, meas.file_units, threads=0)
        write_jsonl(tmp / "texts.jsonl", texts)
        if counter is not None:
            n = write_unit_seeds(tmp, texts, units_identity(cfg.match_units), meas.file_units)
            log.info("benchmarks: units of %d of %d files kept for the eval", n, len(texts))
        if got["matched"]:
            write_jsonl(tmp / "length_match.jsonl", got["matched"])
        dump_config(cfg, tmp / "config.yaml")
        atomic_write_json(tmp / "done.json", _done_marker(cfg))
    log.info("benchmarks: wrote %s (%d utterances)", out, len(texts))
    return out
