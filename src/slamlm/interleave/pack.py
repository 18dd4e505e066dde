"""``slam pack-interleaved``: interleaved / speech-only / text-only token shards from
word-aligned transcripts (a synth manifest) joined with units by ``id``.

Each utterance becomes one document of one kind, drawn with the ``mix`` ratios from a random
generator seeded by ``(seed, id)`` (stable across re-runs and input order). The default mix
is the peer's (slamkit ``config/train_inter_scale.yaml`` ``train_ratios``, chosen there so
that the kinds' token counts match): text 0.202, interleaved 0.543, speech 0.254.

- ``interleaved``: alternating ``<text>``/``<speech>`` spans (:mod:`slamlm.interleave.spans`;
  at least ``ceil(p_speech * n)`` of the ``n`` words are speech, ``p_speech`` 0.3 as slamkit),
- ``speech``: ``<speech>`` + units, ``text``: ``<text>`` + text tokens.

Documents are ``[bos] ... [eos]`` and go to the same shard format as ``slam pack``
(:class:`slamlm.data.shards.ShardWriter`): ``tokens/{train,val}.bin`` + ``*_docs.npy`` +
``index.json``, plus ``<split>_modality.npy`` (one code per document, names in
``index.json["modalities"]``) so training and eval can report loss per kind of document.

Example:
    $ slam pack-interleaved run/units --manifest run/synth/words.jsonl --init run/init \\
        --out run/tokens_il --mix text=0.2,interleaved=0.55,speech=0.25
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from slamlm.config import ConfigError, dump_config, to_dict
from slamlm.corpora.records import read_records
from slamlm.data.pack import find_units_files, id_hash, is_val, split_long, units_hash
from slamlm.data.shards import FORMAT_VERSION, ShardWriter, read_index, shard_dtype
from slamlm.interleave.spans import (
    choose_spans,
    interleave,
    speech_only,
    split_units,
    text_only,
    word_text,
    word_unit_spans,
)
from slamlm.io import FailureLog, atomic_dir, atomic_write_json
from slamlm.vocab import UnitVocab
from slamlm.words.aligned import alignments_file, iter_alignments

log = logging.getLogger(__name__)

MODALITIES = ("speech", "text", "interleaved")  # code = position
# slamkit config/train_inter_scale.yaml train_ratios (text only, interleaved, speech only)
DEFAULT_MIX = "text=0.2023584112,interleaved=0.5433262899,speech=0.2543152989"


@dataclass(frozen=True)
class InterleavePackConfig:
    """Inputs and knobs of ``slam pack-interleaved``.

    ``init``: an interleaved checkpoint folder (its ``config.json`` vocab and saved text
    tokenizer are used); or ``tokenizer`` (a transformers tokenizer folder) + ``n_units``.
    """

    units: str = ""
    manifest: str = ""  # JSONL with id + words [[w, start, end]] (a synth manifest)
    alignments: str = ""  # or: slam align-words output (folder or aligned_text.jsonl); ids join units
    out: str = "tokens_interleaved"
    init: str = ""
    tokenizer: str = ""
    n_units: int = 500
    mix: str = DEFAULT_MIX
    mean_words: float = 10.0  # Poisson mean of a speech span, in words (slamkit interleave_span)
    p_speech: float = 0.3  # at least ceil(p_speech * n) speech words (slamkit interleave_prob)
    frame_rate: float = 25.0
    val_fraction: float = 0.02
    context: int = 1024
    seed: int = 0
    strict: bool = False


def parse_mix(mix: str) -> dict[str, float]:
    """``"interleaved=0.6,speech=0.2,text=0.2"`` -> normalised ratios.

    Example:
        >>> parse_mix("interleaved=3,text=1")
        {'speech': 0.0, 'text': 0.25, 'interleaved': 0.75}
    """
    out = dict.fromkeys(MODALITIES, 0.0)
    for item in filter(None, (s.strip() for s in mix.split(","))):
        key, _, val = item.partition("=")
        if key not in out:
            raise ConfigError(f"mix: unknown kind {key!r} (use {', '.join(MODALITIES)})")
        try:
            out[key] = float(val)
        except ValueError as e:
            raise ConfigError(f"mix: {item!r} is not kind=number") from e
        if out[key] < 0:
            raise ConfigError(f"mix: {key} ratio must be >= 0")
    total = sum(out.values())
    if total <= 0:
        raise ConfigError(f"mix {mix!r}: ratios sum to 0")
    return {k: v / total for k, v in out.items()}


def _rng_for(seed: int, rec_id: str) -> np.random.Generator:
    h = hashlib.sha256(f"{seed}:{rec_id}".encode()).digest()
    return np.random.default_rng(int.from_bytes(h[:8], "little"))


def load_units(folder: str | Path) -> dict[str, dict[str, Any]]:
    """Units records by id from a units folder (or one file)."""
    out: dict[str, dict[str, Any]] = {}
    for f in find_units_files(Path(folder)):
        for r in read_records(f):
            if "id" in r and "units" in r:
                out[str(r["id"])] = r
    return out


def record_words(rec: dict[str, Any]) -> list[Any] | None:
    """Word alignments of a manifest record: ``words`` or the peer's ``aligned_text``."""
    words = rec.get("words", rec.get("aligned_text"))
    return list(words) if isinstance(words, list) else None


def make_document(
    kind: str, words: list[Any], units: np.ndarray, durations: np.ndarray,
    tokenize: Callable[[str], list[int]], vocab: UnitVocab, rng: np.random.Generator,
    cfg: InterleavePackConfig,
) -> list[int]:
    """One ``[bos] ... [eos]`` document of ``kind`` (see :data:`MODALITIES`)."""
    if kind == "speech":
        body = speech_only(units, vocab)
    elif kind == "text":
        body = text_only([word_text(w) for w in words], tokenize, vocab)
    else:
        per_word = split_units(units, word_unit_spans(durations, words, cfg.frame_rate))
        spans = choose_spans(len(words), rng, cfg.mean_words, cfg.p_speech)
        body = interleave(words, per_word, spans, tokenize, vocab)
    return [vocab.bos_id, *body, vocab.eos_id]


def load_text_side(cfg: InterleavePackConfig) -> tuple[Callable[[str], list[int]], UnitVocab]:
    """The text tokenizer and the interleaved vocabulary from ``init`` or ``tokenizer``."""
    from transformers import AutoTokenizer

    if cfg.init:
        from slamlm.interleave.model import load_text_tokenizer
        from slamlm.model.checkpoint import read_meta

        vocab = UnitVocab.from_dict(read_meta(cfg.init)["vocab"])
        tok = load_text_tokenizer(cfg.init)
    elif cfg.tokenizer:
        tok = AutoTokenizer.from_pretrained(cfg.tokenizer)
        vocab = UnitVocab(n_units=cfg.n_units, n_text=len(tok))
    else:
        raise ConfigError("give --init (interleaved checkpoint) or --tokenizer (text LM folder)")
    if not vocab.n_text:
        raise ConfigError(f"{cfg.init}: not an interleaved checkpoint (vocab has no text tokens)")
    return (lambda s: tok.encode(s, add_special_tokens=False)), vocab


def _manifest_words(cfg: InterleavePackConfig, failures: FailureLog
                    ) -> Iterator[tuple[str, list[Any], Path]]:
    """(id, words, file) of every manifest record with word alignments."""
    for f in find_units_files(Path(cfg.manifest)):
        for rec in read_records(f):
            rid = str(rec.get("id", ""))
            words = record_words(rec)
            if not words:
                failures.add(rid, f, "manifest record has no word alignments ('words')")
                continue
            yield rid, words, f


def join_alignments(spec: str | Path, units: dict[str, Any], failures: FailureLog
                    ) -> Iterator[tuple[str, list[Any], str]]:
    """(units id, words, "file line N") of every alignment record whose id joins a units id.

    An id joins exactly, or else by its last path part when that names one units record
    (``84-121123-0000`` joins ``84/121123/84-121123-0000``). Ids that do not join go to
    ``failures``; none joining at all is an error showing ids of both sides.
    """
    by_stem: dict[str, list[str]] = {}
    for uid in units:
        by_stem.setdefault(uid.rsplit("/", 1)[-1], []).append(uid)
    n = joined = 0
    first_bad: str | None = None
    for rid, words, where in iter_alignments(spec):
        n += 1
        uid = rid if rid in units else None
        if uid is None:
            cands = by_stem.get(rid.rsplit("/", 1)[-1], [])
            uid = cands[0] if len(cands) == 1 else None
        if uid is None:
            first_bad = first_bad or rid
            failures.add(rid, where, f"{where}: alignment id {rid!r} has no units record with "
                         f"this id (or file name) in the units folder")
            continue
        joined += 1
        yield uid, words, where
    if n and not joined:
        sample = ", ".join(repr(u) for u in list(units)[:3])
        raise ValueError(f"{alignments_file(spec)}: none of its {n} ids joins the units ids "
                         f"(alignments have {first_bad!r}, units have {sample}): align and "
                         f"extract units from the same corpus (slam align-words <corpus> and "
                         f"slam units <corpus> give the same ids)")


def _iter_docs(cfg: InterleavePackConfig, tokenize: Callable[[str], list[int]],
               vocab: UnitVocab, failures: FailureLog
               ) -> Iterator[tuple[str, str, list[int]]]:
    """Yield (id, kind, tokens) for every record with words that joins with units."""
    units = load_units(cfg.units)
    ratios = parse_mix(cfg.mix)
    kinds, probs = list(ratios), np.array(list(ratios.values()))
    if cfg.alignments:
        records: Iterator[tuple[str, list[Any], Any]] = join_alignments(cfg.alignments, units,
                                                                         failures)
    else:
        records = _manifest_words(cfg, failures)
    for rid, words, f in records:
        if rid not in units:
            failures.add(rid, f, f"no units with this id in {cfg.units} (run slam units)")
            continue
        u = units[rid]
        rng = _rng_for(cfg.seed, rid)
        kind = kinds[int(rng.choice(len(kinds), p=probs))]
        dur = u.get("durations") or [1] * len(u["units"])
        try:
            doc = make_document(kind, words, np.asarray(u["units"]), np.asarray(dur),
                                tokenize, vocab, rng, cfg)
        except ValueError as e:
            failures.add(rid, f, str(e))
            continue
        yield rid, kind, doc


def _source_hash(cfg: InterleavePackConfig) -> str:
    """Identifies inputs + settings: a finished folder with the same hash is not re-packed."""
    parts = []
    words = str(alignments_file(cfg.alignments)) if cfg.alignments else cfg.manifest
    for src in (cfg.units, words):
        root = Path(src)
        files = find_units_files(root)
        parts.append(units_hash(files, root if root.is_dir() else root.parent))
    if cfg.init:
        parts.append(hashlib.sha1((Path(cfg.init) / "config.json").read_bytes()).hexdigest())
    knobs = {k: v for k, v in to_dict(cfg).items() if k not in ("out", "strict")}
    parts.append(json.dumps(knobs, sort_keys=True))
    return hashlib.sha1("|".join(parts).encode()).hexdigest()


def _write_splits(tmp: Path, docs: Iterator[tuple[str, str, list[int]]],
                  cfg: InterleavePackConfig, dtype: np.dtype
                  ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Write train/val shards + per-document modality codes; returns (splits, counts)."""
    writers = {s: ShardWriter(tmp, s, dtype) for s in ("train", "val")}
    mods: dict[str, list[int]] = {"train": [], "val": []}
    counts = {k: {"docs": 0, "tokens": 0} for k in MODALITIES}
    best: tuple[float, int, int] | None = None  # lowest-hash train record (hash, first, pieces)
    for rid, kind, doc in docs:
        split = "val" if is_val(rid, cfg.val_fraction) else "train"
        pieces = split_long(np.asarray(doc, dtype=np.int64), cfg.context)
        if split == "train" and (best is None or id_hash(rid) < best[0]):
            best = (id_hash(rid), writers[split].n_docs, len(pieces))
        for piece in pieces:
            writers[split].add(piece)
            mods[split].append(MODALITIES.index(kind))
        counts[kind]["docs"] += 1
        counts[kind]["tokens"] += len(doc)
    if not writers["val"].n_docs and cfg.val_fraction > 0 and best is not None:
        for _ in range(best[2]):  # keep at least one record for validation (as slam pack does)
            writers["val"].add(writers["train"].drop_doc(best[1]))
            mods["val"].append(mods["train"].pop(best[1]))
    splits = {}
    for s, w in writers.items():
        splits[s] = w.finish()
        np.save(tmp / f"{s}_modality.npy", np.asarray(mods[s], dtype=np.int8))
        splits[s]["modality"] = f"{s}_modality.npy"
    return splits, counts


def run_pack_interleaved(cfg: InterleavePackConfig) -> Path:
    """Write interleaved token shards to ``cfg.out``; returns that folder.

    Re-running with the same inputs and settings skips the work (``index.json`` keeps a hash
    of both inputs and the settings).
    """
    if not cfg.units or not (cfg.manifest or cfg.alignments):
        raise ConfigError("need a units folder and word alignments: --alignments (slam "
                          "align-words output) or --manifest (a synth manifest with words)")
    if cfg.manifest and cfg.alignments:
        raise ConfigError("give --alignments or --manifest, not both")
    out = Path(cfg.out)
    source = _source_hash(cfg)
    try:
        if read_index(out).get("source_hash") == source:
            log.info("%s is up to date; nothing to do", out)
            return out
    except ValueError:
        pass
    tokenize, vocab = load_text_side(cfg)
    dtype = shard_dtype(vocab.size)  # uint32 for Qwen2.5/Llama-3-sized text vocabularies
    failures = FailureLog(out.parent / f"{out.name}_failures.jsonl", "pack-interleaved",
                          cfg.strict)
    with atomic_dir(out) as tmp:
        splits, counts = _write_splits(tmp, _iter_docs(cfg, tokenize, vocab, failures), cfg,
                                       dtype)
        if not sum(s["n_docs"] for s in splits.values()):
            raise ValueError(f"{cfg.alignments or cfg.manifest}: no usable records ({failures.count} failed, "
                             f"see {failures.path})")
        index = {"format": FORMAT_VERSION, "dtype": dtype.name,
                 "vocab": vocab.to_dict(), "context": cfg.context,
                 "val_fraction": cfg.val_fraction, "source_hash": source, "interleaved": True,
                 "modalities": list(MODALITIES), "mix": parse_mix(cfg.mix), "counts": counts,
                 "n_failures": failures.count, "splits": splits}
        dump_config(cfg, tmp / "config.yaml")
        atomic_write_json(tmp / "index.json", index)
    log.info("packed %s: %s (%d failures)", out, counts, failures.count)
    return out
