"""``slam units extract``: audio (any container of ``slamlm.corpora``) -> units shards, resumable.

Output folder::

    units.jsonl            (or units-<i>of<n>.jsonl per shard; .jsonl.gz with compress=true;
                           units.parquet / units.hf with --format parquet / hf)
    failures.jsonl         bad inputs with a reason (failures-<i>of<n>.jsonl per shard)
    kmeans-<hash>.safetensors   when the k-means was fit here
    config.yaml            the resolved UnitsConfig
    summary.json           totals; written atomically at the end (the finished marker)

A record: ``{"id", "path", "units", "durations", "n_frames", "sr", "seconds", "encoder",
"kmeans_hash"[, "text"]}``: units are deduplicated, ``sum(durations) == n_frames``, ``sr`` is the rate
the encoder saw (16 kHz). Re-running skips ids already written (and ids that already failed),
so a killed run resumes and a finished one changes nothing. With ``--format parquet``/``hf``
records are appended to the JSONL while running and moved into the table at the end.

Example:
    >>> # run_units(build_config(UnitsConfig, base={"input": "data/audio", "out": "run/units"}))
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from slamlm.corpora import AudioItem
from slamlm.corpora.records import read_records, write_records
from slamlm.io import FailureLog, JsonlAppender, atomic_write_json, read_jsonl
from slamlm.units.fit import ensure_kmeans
from slamlm.units.inputs import input_options, list_inputs
from slamlm.units.shard import parse_shard, shard_of, shard_tag

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UnitsConfig:
    """Settings of one extraction run (``slam units extract``)."""

    input: str = ""                 # folder, glob, manifest, path list, HF dataset, parquet, .tar shards, lhotse manifest
    out: str = ""                   # output folder
    input_format: str = "auto"      # auto | files | manifest | list | hf | parquet | webdataset | lhotse
    split: str | None = None        # split of a saved HF DatasetDict
    audio_column: str | None = None  # HF/parquet audio column; none: the one Audio-typed column
    text_column: str | None = None  # HF/parquet text column; none: text, transcript, ... when present
    id_column: str | None = None    # HF/parquet id column; none: id, file, audio.path; "row": <file>/<row>
    format: str = "jsonl"           # units output: jsonl | parquet | hf (a saved HF dataset)
    encoder: str = "mel"            # "mel" or "hubert:<folder or hub id>"
    layer: int = 11                 # HuBERT transformer layer (1-based)
    kmeans: str | None = None       # .safetensors / textlesslib .bin; None: fit one on the input
    k: int = 500                    # clusters when fitting
    max_fit_frames: int = 200_000   # frames sampled to fit the k-means
    seed: int = 0
    device: str = "auto"            # auto | cpu | cuda | cuda:1
    dtype: str | None = None        # bf16 | fp16 | fp32 (default fp32: bf16 changes ~1% of units)
    batch_seconds: float = 320.0    # audio per batch (padded length x files)
    num_workers: int = 2            # audio decoding processes (0: in-process)
    # "i/n"; auto: RANK/WORLD_SIZE (torchrun), else the SLURM array, else 0/1; slurm: the
    # SLURM array; None: RANK/WORLD_SIZE or 0/1. Join the shards with `slam units merge`
    shard: str | None = None
    compress: bool = False          # gzip the shard when finished
    strict: bool = False            # a bad input stops the run


def shard_paths(out: Path, i: int, n: int) -> tuple[Path, Path, Path]:
    """(units file, failures file, summary file) of shard i of n."""
    tag = shard_tag(i, n)
    return out / f"units{tag}.jsonl", out / f"failures{tag}.jsonl", out / f"summary{tag}.json"


OUT_FORMATS = {"jsonl": ".jsonl", "parquet": ".parquet", "hf": ".hf"}


def units_files(folder: str | Path) -> list[Path]:
    """Units files of an output folder: ``units*.jsonl[.gz]``, ``units*.parquet``, ``units*.hf/``."""
    folder = Path(folder)
    return sorted([*folder.glob("units*.jsonl"), *folder.glob("units*.jsonl.gz"),
                   *folder.glob("units*.parquet"), *(p for p in folder.glob("units*.hf")
                                                     if p.is_dir())])


CUT_FIX = ("re-run `slam units extract` into this folder to complete it (a resumed run "
           "repairs the cut line), or delete that line")


def read_units(folder: str | Path, failures: FailureLog | None = None
               ) -> Iterator[dict[str, Any]]:
    """All unit records of an output folder (every shard: JSONL, gzipped, parquet or HF),
    streamed.

    A cut last line (a killed writer) is never dropped silently: it is recorded in
    ``failures`` when given, else it raises :class:`slamlm.io.CutLineError` naming the file
    and line.

    Example:
        >>> # n = sum(1 for _ in read_units("run/units", FailureLog("run/x_failures.jsonl", "x")))
    """
    files = units_files(folder)
    if not files:
        raise FileNotFoundError(f"{folder}: no units*.jsonl / .parquet / .hf files (run slam "
                                f"units extract first)")
    for f in files:
        yield from read_records(f, cut_tail="report", failures=failures, fix=CUT_FIX)


def plan_batches(seconds: list[float], batch_seconds: float, window: int | None = None
                 ) -> list[list[int]]:
    """Longest-first batches whose padded size (max length x count) stays under the budget.

    ``window``: sort only within runs of that many consecutive inputs (parquet rows are read
    a row group at a time, so batches stay near each other in the file).
    """
    if window:
        out: list[list[int]] = []
        for lo in range(0, len(seconds), window):
            part = plan_batches(seconds[lo:lo + window], batch_seconds)
            out += [[lo + i for i in b] for b in part]
        return out
    order = sorted(range(len(seconds)), key=lambda i: (-seconds[i], i))
    batches: list[list[int]] = []
    cur: list[int] = []
    for i in order:
        if cur and seconds[cur[0]] * (len(cur) + 1) > batch_seconds:
            batches.append(cur)
            cur = []
        cur.append(i)
    if cur:
        batches.append(cur)
    return batches


class _AudioSet:
    """Map-style dataset for a DataLoader: decodes in worker processes, never raises."""

    def __init__(self, items: list[AudioItem], min_seconds: float):
        self.items, self.min_seconds = items, min_seconds

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, Any]:
        from slamlm.audio import AudioError
        from slamlm.corpora import load_item

        it = self.items[i]
        rid, path = it.id, it.source
        try:
            return {"id": rid, "path": path, "text": it.text,
                    "wav": load_item(it, min_seconds=self.min_seconds)}
        except AudioError as e:
            return {"id": rid, "path": path, "error": e.reason}
        except Exception as e:  # anything else: still one bad file, not a dead job
            return {"id": rid, "path": path, "error": f"cannot decode ({type(e).__name__}: {e})"}


def _as_list(batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return batch


def _one_thread(_worker: int) -> None:
    import torch

    torch.set_num_threads(1)  # decoders are single-threaded; leave the cores to the encoder


def iter_decoded(items: list[AudioItem], batches: list[list[int]], min_seconds: float,
                 num_workers: int) -> Iterator[list[dict[str, Any]]]:
    """Yield decoded batches in ``batches`` order (worker processes when num_workers > 0)."""
    from torch.utils.data import DataLoader

    ds = _AudioSet(items, min_seconds)
    loader = DataLoader(ds, batch_sampler=batches, num_workers=num_workers,
                        collate_fn=_as_list, prefetch_factor=2 if num_workers else None,
                        worker_init_fn=_one_thread if num_workers else None)
    yield from loader


def done_ids(files: list[Path]) -> tuple[dict[str, float], set[str]]:
    """(id -> seconds) of finished records, and the k-means hashes they were made with."""
    done: dict[str, float] = {}
    hashes: set[str] = set()
    for f in files:
        for r in read_records(f):
            done[r["id"]] = float(r.get("seconds") or 0.0)
            hashes.add(str(r.get("kmeans_hash")))
    return done, hashes


def make_record(rid: str, path: str, frames: np.ndarray, seconds: float,
                identity: dict[str, Any], text: str | None = None) -> dict[str, Any]:
    from slamlm.units.extractor import dedup

    units, durations = dedup(frames)
    rec = {"id": rid, "path": path, "units": units.tolist(), "durations": durations.tolist(),
           "n_frames": int(len(frames)), "sr": 16000, "seconds": round(seconds, 4),
           "encoder": identity["encoder"], "kmeans_hash": identity["kmeans_hash"]}
    if text:
        rec["text"] = text
    return rec


def units_schema() -> Any:
    """The parquet/HF columns of a units record (the JSONL keys; ``text`` may be null)."""
    import pyarrow as pa

    return pa.schema([("id", pa.string()), ("path", pa.string()), ("units", pa.list_(pa.int64())),
                      ("durations", pa.list_(pa.int64())), ("n_frames", pa.int64()),
                      ("sr", pa.int64()), ("seconds", pa.float64()), ("encoder", pa.string()),
                      ("kmeans_hash", pa.string()), ("text", pa.string())])


def _probe(items: list[AudioItem], failures: FailureLog) -> tuple[list, list[float]]:
    """Header lengths (seconds); unreadable headers and missing audio go to failures."""
    from slamlm.audio import AudioError
    from slamlm.corpora import probe_item

    ok, secs = [], []
    for it in items:
        try:
            sec = probe_item(it)
        except AudioError as e:
            failures.add(it.id, it.source, e.reason)
            continue
        ok.append(it)
        secs.append(sec)
    return ok, secs


def _encode_batch(ex: Any, batch: list[dict[str, Any]]) -> list[np.ndarray | Exception]:
    """Encode a decoded batch; on a batch error, retry file by file to isolate it."""
    wavs = [b["wav"] for b in batch]
    try:
        return list(ex.encode(wavs))
    except Exception as e:  # noqa: BLE001 - isolate the bad file below
        if len(batch) == 1:
            return [e]
        log.warning("batch of %d failed (%s); encoding its files one by one", len(batch), e)
        return [r for b in batch for r in _encode_batch(ex, [b])]


def run_units(cfg: UnitsConfig) -> Path:
    """Extract units for every input not already done; returns the output folder."""
    from slamlm.config import dump_config
    from slamlm.units.extractor import UnitExtractor

    if not cfg.input or not cfg.out:
        raise ValueError("slam units extract needs an input and --out")
    if cfg.format not in OUT_FORMATS:
        raise ValueError(f"--format {cfg.format!r}: choose one of {', '.join(OUT_FORMATS)}")
    if cfg.format != "jsonl":  # fail before any work when the library is missing
        from slamlm.corpora.item import need

        need("pyarrow", f"--format {cfg.format}")
        if cfg.format == "hf":
            need("datasets", "--format hf")
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    rank, world = parse_shard(cfg.shard)
    items = list_inputs(cfg.input, **input_options(cfg))
    if cfg.device == "auto" and world > 1 and "LOCAL_RANK" in os.environ:
        import torch

        if torch.cuda.is_available():  # torchrun: one GPU per process
            cfg = replace(cfg, device=f"cuda:{os.environ['LOCAL_RANK']}")
    fitted: dict = {}  # id -> (features, seconds) of the files the k-means fit encoded
    kmeans_path = ensure_kmeans(cfg, items, out, keep=fitted)
    cfg = replace(cfg, kmeans=str(kmeans_path))
    ex = UnitExtractor.load(cfg.encoder, kmeans_path, layer=cfg.layer, device=cfg.device,
                            dtype=cfg.dtype)
    ident = ex.identity()
    units_path, fail_path, summary_path = shard_paths(out, rank, world)
    done, hashes = done_ids(units_files(out))
    if hashes - {ident["kmeans_hash"]}:
        raise ValueError(f"{out} holds units made with k-means {sorted(hashes)}, this run uses "
                         f"{ident['kmeans_hash']}: use another --out or the same --kmeans")
    if rank == 0:
        dump_config(cfg, out / "config.yaml")
        # what `slam init --units-identity` / eval / generate need to re-create this extractor
        atomic_write_json(out / "identity.json", ident)
    summary_path.unlink(missing_ok=True)  # present again only once this run finishes
    failures = FailureLog(fail_path, stage="units", strict=cfg.strict)
    mine = [it for it in items if shard_of(it.id, world) == rank]
    failed_before = failures.known()  # a copy: taken once, not once per input
    todo = [it for it in mine if it.id not in done and it.id not in failed_before]
    skipped = len(mine) - len(todo)
    if failed_before:
        log.info("%d inputs failed in an earlier run and are skipped (fix them and delete %s "
                 "to retry)", len(failed_before), fail_path)
    stats = _extract(ex, ident, todo, cfg, units_path, failures, fitted)
    _finish(cfg, out, units_path, summary_path, fail_path, rank, world, stats, skipped)
    return out


def _extract(ex: Any, ident: dict[str, Any], todo: list[AudioItem], cfg: UnitsConfig,
             units_path: Path, failures: FailureLog, fitted: dict | None = None
             ) -> dict[str, float]:
    """Probe, batch, decode, encode and append records; returns counts of this run.
    ``fitted``: id -> (features, seconds) the k-means fit already encoded: only assigned."""
    from tqdm.auto import tqdm

    stats = {"done": 0, "failed": failures.count, "seconds": 0.0}
    reused = [it for it in todo if it.id in (fitted or {})]
    if reused:
        t0 = time.perf_counter()
        with JsonlAppender(units_path) as app:
            for it in reused:
                feats, sec = fitted[it.id]
                frames = ex.kmeans.assign(feats.to(ex.kmeans.centroids.device)).cpu().numpy()
                app.write(make_record(it.id, it.source, frames.astype(np.int64), sec, ident,
                                      it.text))
                stats["done"] += 1
                stats["seconds"] += sec
        log.info("units: %d files assigned from the features the k-means fit encoded (%.1f s)",
                 len(reused), time.perf_counter() - t0)
        ids = {it.id for it in reused}
        todo = [it for it in todo if it.id not in ids]
    if fitted:
        fitted.clear()  # the memory goes back before the extraction
    todo, secs = _probe(todo, failures)
    window = 512 if any(it.kind == "parquet" for it in todo) else None
    batches = plan_batches(secs, cfg.batch_seconds, window)
    t0 = time.perf_counter()
    bar = tqdm(total=sum(secs) / 3600, unit="h", desc="units", disable=not todo,
               bar_format="{l_bar}{bar}| {n:.3f}/{total:.3f} audio-h [{elapsed}<{remaining}{postfix}]")
    with JsonlAppender(units_path) as app:
        for batch in iter_decoded(todo, batches, ex.min_seconds, cfg.num_workers):
            good = [b for b in batch if "wav" in b]
            for b in batch:
                if "error" in b:
                    failures.add(b["id"], b["path"], b["error"])
            for b, res in zip(good, _encode_batch(ex, good) if good else []):
                if isinstance(res, Exception):
                    failures.add(b["id"], b["path"], f"encoder failed ({type(res).__name__}: {res})")
                    continue
                sec = len(b["wav"]) / 16000
                app.write(make_record(b["id"], b["path"], res, sec, ident, b.get("text")))
                stats["done"] += 1
                stats["seconds"] += sec
            bar.update(sum(len(b["wav"]) for b in good) / 16000 / 3600)
            bar.set_postfix_str(f"{stats['seconds'] / max(time.perf_counter() - t0, 1e-9):.0f}x RT")
    bar.close()
    stats["failed"] = failures.count - stats["failed"]
    stats["wall_s"] = time.perf_counter() - t0
    return stats


def _finish(cfg: UnitsConfig, out: Path, units_path: Path, summary_path: Path, fail_path: Path,
            rank: int, world: int, stats: dict[str, float], skipped: int) -> None:
    """Optional gzip, then totals to summary.json (atomic: the finished marker) + a log line."""
    from slamlm.io import write_jsonl

    gz = units_path.with_name(units_path.name + ".gz")
    table = units_path.with_name(units_path.name[:-len(".jsonl")] + OUT_FORMATS[cfg.format])
    if cfg.format != "jsonl" and units_path.exists():
        old = table.exists()
        rows = itertools.chain(read_records(table) if old else (), read_records(units_path))
        write_records(table, rows, schema=units_schema())  # atomic, streamed; then the JSONL goes
        units_path.unlink()
    elif cfg.compress and units_path.exists():
        old_gz = read_jsonl(gz) if gz.exists() else iter(())
        write_jsonl(gz, itertools.chain(old_gz, read_jsonl(units_path)))  # streamed
        units_path.unlink()
    files = [f for f in (units_path, gz, table) if f.exists()]
    total, _ = done_ids(files)
    n_fail = sum(1 for _ in read_jsonl(fail_path, skip_bad=True)) if fail_path.exists() else 0
    hours = sum(total.values()) / 3600
    atomic_write_json(summary_path, {"shard": f"{rank}/{world}", "finished": True,
                                     "records": len(total),
                                     "failed": n_fail, "audio_hours": round(hours, 6),
                                     "files": [f.name for f in files]})
    rt = stats["seconds"] / max(stats["wall_s"], 1e-9)
    log.info("units shard %d/%d: %d done, %d skipped (already done or failed before), %d failed "
             "this run; %.3f audio-h this run at %.0fx real time; totals %d records, %d failed, "
             "%.3f audio-h -> %s", rank, world, stats["done"], skipped, stats["failed"],
             stats["seconds"] / 3600, rt, len(total), n_fail, hours, out)
