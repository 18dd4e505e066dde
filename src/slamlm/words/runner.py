"""``slam align-words``: word timings for every utterance of a corpus, as ``aligned_text``
JSONL keyed by the ids ``slam units`` gives the same corpus.

Sources (``--source``, ``auto`` picks by the input):

============  ===============================================================================
audio         any ``slam units`` container whose items have transcripts (LibriSpeech trees,
              manifests with ``text``, HF/parquet text columns, tar ``.txt`` members, lhotse
              supervisions): forced alignment with pocketsphinx
textgrid      a folder of Montreal Forced Aligner ``.TextGrid`` files (or one): the ``words`` tier
librispeech   a folder of CorentinJ ``*.alignment.txt`` files (or one)
============  ===============================================================================

Output folder: ``aligned_text.jsonl`` (written atomically at the end; resumable: a killed run
keeps ``aligned_text.partial.jsonl`` and a re-run aligns only what is missing),
``failures.jsonl`` (utterances that could not be aligned, with the reason), ``summary.json``
and ``config.yaml``.

Example:
    $ slam align-words LibriSpeech/dev-clean --out run/words
    $ slam align-words mfa_out/ --out run/words --source textgrid --tier words
    $ slam align-words LibriSpeech-Alignments/dev-clean --out run/words
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slamlm.audio import AudioError, record_id
from slamlm.config import ConfigError, dump_config
from slamlm.corpora import AudioItem, list_items
from slamlm.io import FailureLog, JsonlAppender, ManifestError, atomic_write_json, write_jsonl
from slamlm.words.aligned import FILE, make_record
from slamlm.words.librispeech import SUFFIX, find_alignment_files, read_alignment_file
from slamlm.words.textgrid import read_textgrid

log = logging.getLogger(__name__)

SOURCES = ("auto", "audio", "textgrid", "librispeech")
PARTIAL = "aligned_text.partial.jsonl"


@dataclass(frozen=True)
class AlignWordsConfig:
    """Settings of ``slam align-words``."""

    input: str = ""                 # corpus with transcripts (any slam units container), TextGrid folder, or *.alignment.txt folder
    out: str = ""                   # output folder (aligned_text.jsonl, failures.jsonl, summary.json)
    source: str = "auto"            # auto | audio (pocketsphinx forced alignment) | textgrid | librispeech
    input_format: str = "auto"      # audio: auto | files | manifest | list | hf | parquet | webdataset | lhotse
    split: str | None = None        # audio: split of a saved HF DatasetDict
    audio_column: str | None = None  # audio: HF/parquet audio column
    text_column: str | None = None  # audio: HF/parquet transcript column
    id_column: str | None = None    # audio: HF/parquet id column (as given to slam units)
    oov: str = "espeak"             # audio: words missing from CMUdict: espeak (espeak-ng phonemes) | letters | fail
    voice: str = "en-us"            # audio: espeak-ng voice for the pronunciations of unknown words
    max_uncovered: float = 0.5      # audio: fail an utterance when more of its speech than this lies outside every word
    tier: str = "words"             # textgrid: the interval tier with the words
    ids: str = "path"               # textgrid/librispeech ids: path (relative path, as slam units) | stem
    workers: int = 1                # audio: aligning processes (one pocketsphinx decoder each)
    strict: bool = False            # a failed utterance stops the run


def detect_source(spec: str | Path) -> str:
    """``textgrid`` / ``librispeech`` for files or folders of those, else ``audio``."""
    p = Path(str(spec))
    name = p.name.lower()
    if p.is_file():
        return ("textgrid" if name.endswith(".textgrid") else
                "librispeech" if name.endswith(SUFFIX) else "audio")
    if p.is_dir():
        for q in p.rglob("*"):
            n = q.name.lower()
            if n.endswith(".textgrid"):
                return "textgrid"
            if n.endswith(SUFFIX):
                return "librispeech"
    return "audio"


def _rid(path: Path, root: Path, ids: str) -> str:
    return path.name.split(".")[0] if ids == "stem" else record_id(path, root)


def _done_ids(*files: Path) -> set[str]:
    out: set[str] = set()
    for f in files:
        if f.is_file():
            with open(f, encoding="utf-8") as fh:
                for line in fh:
                    try:
                        out.add(str(json.loads(line)["id"]))
                    except (ValueError, KeyError, TypeError):
                        continue  # a cut last line: re-done
    return out


def _finish(out: Path, stats: dict[str, Any], cfg: AlignWordsConfig) -> None:
    """Merge the finished records and the partial file into ``aligned_text.jsonl``."""
    final, partial = out / FILE, out / PARTIAL
    recs: dict[str, dict[str, Any]] = {}
    for f in (final, partial):
        if f.is_file():
            with open(f, encoding="utf-8") as fh:
                for line in fh:
                    try:
                        r = json.loads(line)
                    except ValueError:
                        continue
                    recs[str(r["id"])] = r
    write_jsonl(final, recs.values())
    partial.unlink(missing_ok=True)
    stats["records"] = len(recs)
    dump_config(cfg, out / "config.yaml")
    atomic_write_json(out / "summary.json", stats)


_ALIGNER: Any = None  # this process's ForcedAligner (one per worker)


def _init_worker(oov: str, voice: str, max_uncovered: float) -> None:
    from slamlm.words.forced import ForcedAligner

    global _ALIGNER
    _ALIGNER = ForcedAligner(oov=oov, voice=voice, max_uncovered=max_uncovered)


def _align_one(it: AudioItem) -> tuple[AudioItem, dict[str, Any] | None, str, float]:
    """(item, record or None, failure reason, audio seconds) of one utterance."""
    from slamlm.corpora.decode import load_item
    from slamlm.words.forced import AlignError

    if not it.text or not it.text.strip():
        return it, None, ("no transcript (give a corpus with text: LibriSpeech *.trans.txt, a "
                          "manifest 'text', --text-column)"), 0.0
    try:
        wav = load_item(it)
        res = _ALIGNER.align(wav, it.text)
    except (AudioError, AlignError, OSError) as e:
        return it, None, str(e), 0.0
    extra: dict[str, Any] = {"uncovered_speech": res.uncovered}
    if res.oov:
        extra["oov"] = res.oov
    return it, make_record(it.id, res.words, it.text, it.source, **extra), "", len(wav) / 16000


def _results(cfg: AlignWordsConfig, todo: list[AudioItem]) -> Iterator[Any]:
    """:func:`_align_one` over ``todo``, in order, in this process or ``cfg.workers`` ones."""
    args = (cfg.oov, cfg.voice, cfg.max_uncovered)
    if cfg.workers <= 1 or len(todo) < 2:
        _init_worker(*args)
        yield from map(_align_one, todo)
        return
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    with ctx.Pool(cfg.workers, initializer=_init_worker, initargs=args) as pool:
        yield from pool.imap(_align_one, todo, chunksize=4)


def _align_audio(cfg: AlignWordsConfig, out: Path, failures: FailureLog) -> dict[str, Any]:
    from slamlm.words.forced import identity

    items = list_items(cfg.input, cfg.input_format, split=cfg.split,
                       audio_column=cfg.audio_column, text_column=cfg.text_column,
                       id_column=cfg.id_column)
    done = _done_ids(out / FILE, out / PARTIAL)
    todo = [it for it in items if it.id not in done and it.id not in failures.known()]
    log.info("%d utterances, %d already aligned, %d failed before, %d to align", len(items),
             len(done), len(failures.known()), len(todo))
    stats: dict[str, Any] = {"source": "audio", "aligner": identity(cfg.oov), "aligned": 0,
                             "audio_seconds": 0.0, "workers": cfg.workers}
    oov: dict[str, str] = {}
    t0 = time.perf_counter()
    with JsonlAppender(out / PARTIAL) as app:
        for it, rec, reason, secs in _results(cfg, todo):
            if rec is None:
                failures.add(it.id, it.source, reason)
                continue
            app.write(rec)
            oov.update(rec.get("oov", {}))
            stats["aligned"] += 1
            stats["audio_seconds"] += secs
    took = time.perf_counter() - t0
    stats["wall_seconds"] = round(took, 2)
    stats["x_real_time"] = round(stats["audio_seconds"] / took, 1) if took > 0 else None
    stats["audio_seconds"] = round(stats["audio_seconds"], 2)
    stats["oov_words"] = dict(sorted(oov.items())[:200])
    stats["n_oov_words"] = len(oov)
    return stats


def _read_files(cfg: AlignWordsConfig, source: str, out: Path, failures: FailureLog
                ) -> dict[str, Any]:
    """Convert TextGrid / LibriSpeech alignment files (fast: always all of them)."""
    root = Path(cfg.input)
    recs: dict[str, dict[str, Any]] = {}
    where: dict[str, str] = {}

    def add(rid: str, words: list[list], src: str) -> None:
        if rid in recs:
            raise ManifestError(f"{src}: id {rid!r} is also given by {where[rid]} (use --ids "
                                f"path to keep folders in the ids)")
        if not words:
            failures.add(rid, src, "no words (only silence intervals)")
            return
        recs[rid], where[rid] = make_record(rid, words, file_name=src), src

    if source == "textgrid":
        files = [root] if root.is_file() else sorted(
            q for q in root.rglob("*") if q.name.lower().endswith(".textgrid"))
        if not files:
            raise ManifestError(f"{root}: no .TextGrid files under it")
        for f in files:
            rid = _rid(f, root, cfg.ids)
            try:
                words = read_textgrid(f, cfg.tier)
            except ManifestError as e:
                failures.add(rid, f, str(e))
                continue
            add(rid, words, str(f))
    else:
        for f in find_alignment_files(root):
            prefix = "" if cfg.ids == "stem" or root.is_file() else \
                record_id(f, root).rpartition("/")[0]
            try:
                rows = read_alignment_file(f)
            except ManifestError as e:
                failures.add(record_id(f, root), f, str(e))
                continue
            for utt, words, line in rows:
                add(f"{prefix}/{utt}" if prefix else utt, words, f"{f} line {line}")
    write_jsonl(out / PARTIAL, recs.values())
    (out / FILE).unlink(missing_ok=True)  # a conversion is redone whole
    return {"source": source, "aligned": len(recs)}


def run_align_words(cfg: AlignWordsConfig) -> Path:
    """Write ``<out>/aligned_text.jsonl``; returns the output folder."""
    if not cfg.input or not cfg.out:
        raise ConfigError("slam align-words needs an input and --out")
    if cfg.source not in SOURCES:
        raise ConfigError(f"--source {cfg.source!r}: choose one of {', '.join(SOURCES)}")
    if cfg.workers < 1:
        raise ConfigError(f"--workers {cfg.workers}: need at least 1")
    if cfg.ids not in ("path", "stem"):
        raise ConfigError(f"--ids {cfg.ids!r}: choose path or stem")
    source = detect_source(cfg.input) if cfg.source == "auto" else cfg.source
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").unlink(missing_ok=True)  # present again once this run finishes
    failures = FailureLog(out / "failures.jsonl", "align-words", cfg.strict)
    if source == "audio":
        stats = _align_audio(cfg, out, failures)
    else:
        (out / "failures.jsonl").unlink(missing_ok=True)
        failures = FailureLog(out / "failures.jsonl", "align-words", cfg.strict)
        stats = _read_files(cfg, source, out, failures)
    stats["failed"] = failures.count
    _finish(out, stats, cfg)
    log.info("aligned %d utterances into %s (%d failed this run%s)", stats["records"],
             out / FILE, failures.count, f", see {failures.path}" if failures.count else "")
    return out
