"""Preference triplets -> token sequences for DPO.

Input: a JSONL of triplets, either the peer format with audio paths (relative to the JSONL)
``{"prompt_path", "chosen_path", "rejected_path"}`` (+ optional ``prompt_text``,
``chosen_text``, ``rejected_text``, ``id``) or unit lists ``{"prompt_units", "chosen_units",
"rejected_units"}``. Audio is turned into units with the checkpoint's extractor (consecutive
duplicates removed by default, as in pretraining). A pair's sequences are
``[bos] + prompt + completion + [eos]``; only ``completion + [eos]`` counts in its log-prob.

Example:
    >>> from slamlm.vocab import UnitVocab
    >>> p = make_pair("a", [1, 2], [3, 4], [5], UnitVocab(n_units=10))
    >>> p.prompt.tolist(), p.chosen.tolist(), p.rejected.tolist()
    ([1, 4, 5], [6, 7, 2], [8, 2])
    >>> auto_bleu([1, 2, 1, 2, 1, 2], n=2)  # every bigram occurs elsewhere too
    1.0
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from slamlm.io import FailureLog, ManifestError
from slamlm.vocab import UnitVocab

log = logging.getLogger(__name__)

ROLES = ("prompt", "chosen", "rejected")


@dataclass(frozen=True)
class PreferencePair:
    """One triplet as token ids: ``prompt`` starts with bos, completions end with eos."""

    id: str
    prompt: np.ndarray
    chosen: np.ndarray
    rejected: np.ndarray

    def sequences(self) -> tuple[np.ndarray, np.ndarray]:
        """``(prompt + chosen, prompt + rejected)`` as int64 arrays."""
        return (np.concatenate([self.prompt, self.chosen]),
                np.concatenate([self.prompt, self.rejected]))


@dataclass
class DataSummary:
    """What loading kept and dropped (written to ``data_summary.json``)."""

    n_records: int = 0
    n_pairs: int = 0
    n_failed: int = 0
    n_repetitive: int = 0
    failures: list[str] = field(default_factory=list)


def make_pair(pair_id: str, prompt_units: Sequence[int], chosen_units: Sequence[int],
              rejected_units: Sequence[int], vocab: UnitVocab) -> PreferencePair:
    """Unit ids -> a :class:`PreferencePair` (raises ``VocabError`` naming the id/role)."""
    enc = {r: vocab.encode_units(u, where=f"pair {pair_id} {r}")
           for r, u in zip(ROLES, (prompt_units, chosen_units, rejected_units))}
    for r in ("chosen", "rejected"):
        if enc[r].size == 0:
            raise ValueError(f"pair {pair_id}: {r} continuation is empty")
    bos, eos = np.array([vocab.bos_id]), np.array([vocab.eos_id])
    return PreferencePair(
        id=pair_id,
        prompt=np.concatenate([bos, enc["prompt"]]).astype(np.int64),
        chosen=np.concatenate([enc["chosen"], eos]).astype(np.int64),
        rejected=np.concatenate([enc["rejected"], eos]).astype(np.int64),
    )


def auto_bleu(seq: Sequence[Any], n: int = 2) -> float:
    """Share of the ``n``-grams of ``seq`` that also occur elsewhere in ``seq`` (0 = none).

    Words (n=2) for transcripts, units (n=4) otherwise; sequences shorter than ``n`` score 0.
    """
    grams = [tuple(seq[i:i + n]) for i in range(len(seq) - n + 1)]
    if not grams:
        return 0.0
    counts = Counter(grams)
    return sum(1 for g in grams if counts[g] > 1) / len(grams)


def repetition_score(record: dict[str, Any], chosen_units: Sequence[int],
                     prompt_units: Sequence[int] = ()) -> float:
    """slamkit's repetition filter score: Auto-BLEU of ``prompt_text + " " + chosen_text``
    (NLTK word bigrams) when the texts are given, else of the prompt + chosen unit 4-grams."""
    chosen, prompt = record.get("chosen_text"), record.get("prompt_text")
    if isinstance(chosen, str) and chosen.strip():
        from nltk.tokenize import NLTKWordTokenizer

        text = f"{prompt} {chosen}" if isinstance(prompt, str) else chosen
        return auto_bleu(NLTKWordTokenizer().tokenize(text), n=2)
    return auto_bleu([*prompt_units, *chosen_units], n=4)


def _record_id(rec: dict[str, Any], path: Path, line: int) -> str:
    if rec.get("id") is not None:
        return str(rec["id"])
    if isinstance(rec.get("prompt_path"), str):
        return str(Path(rec["prompt_path"]).with_suffix(""))
    return f"{path.stem}:{line}"


def _units_of(rec: dict[str, Any], root: Path, encode: Callable[[list[Path]], list[np.ndarray]]
              | None) -> list[np.ndarray]:
    """The three unit arrays of a record (lists or audio); raises ValueError with the reason."""
    if all(f"{r}_units" in rec for r in ROLES):
        for r in ROLES:
            u = rec[f"{r}_units"]
            if not isinstance(u, list) or not all(
                    isinstance(x, int) and not isinstance(x, bool) for x in u):
                raise ValueError(f"'{r}_units' must be a list of integer unit ids, got "
                                 f"{json.dumps(u)[:40]}")
        return [np.asarray(rec[f"{r}_units"], dtype=np.int64).reshape(-1) for r in ROLES]
    if not all(isinstance(rec.get(f"{r}_path"), str) for r in ROLES):
        raise ValueError("needs prompt_/chosen_/rejected_units or prompt_/chosen_/rejected_path")
    paths = [root / rec[f"{r}_path"] for r in ROLES]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise ValueError(f"audio file(s) not found: {', '.join(missing)}")
    if encode is None:
        raise ValueError("audio triplets need the checkpoint's unit extractor")
    return [np.asarray(u, dtype=np.int64) for u in encode(paths)]


def load_triplets(
    path: str | Path,
    vocab: UnitVocab,
    encode: Callable[[list[Path]], list[np.ndarray]] | None = None,
    failures: FailureLog | None = None,
    max_auto_bleu: float | None = None,
) -> tuple[list[PreferencePair], DataSummary]:
    """Read ``path`` into pairs; bad records go to ``failures`` (or raise when it is strict).

    ``encode(paths) -> units`` turns audio into (deduplicated) unit ids; ``max_auto_bleu``
    drops pairs whose prompt + chosen repeat that much or more (slamkit keeps
    Auto-BLEU < 0.3; counted in the summary).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: triplets file does not exist (--data)")
    try:
        # lines end at \n only: splitlines() also breaks at \v, \f, \x1c..., which would
        # number lines unlike the user's editor
        lines = path.read_text(encoding="utf-8").split("\n")
    except UnicodeDecodeError as e:
        raise ManifestError(f"{path}: not a UTF-8 JSONL file (byte {e.start}: {e.reason}); "
                            f"give one JSON triplet per line") from e
    pairs, summary, seen = [], DataSummary(), set()
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        summary.n_records += 1
        rec_id = f"{path.name}:{i}"
        try:
            rec = _parse_line(line)
            rec_id = _record_id(rec, path, i)
            if rec_id in seen:
                raise ValueError(f"duplicate id {rec_id!r}")
            units = _units_of(rec, path.parent, encode)
            pair = make_pair(rec_id, *units, vocab=vocab)
        except (ValueError, ManifestError, OSError, RuntimeError, TypeError, KeyError,
                IndexError, AttributeError, OverflowError) as e:  # a bad record, never a crash
            msg = str(e) if isinstance(e, (ValueError, OSError, RuntimeError)) else (
                f"malformed record ({type(e).__name__}: {e})")
            reason = f"{path} line {i}: {msg}"
            summary.n_failed += 1
            summary.failures.append(reason)
            if failures is None:
                raise ValueError(reason) from e
            failures.add(rec_id, path, reason)
            log.warning("skipping %s", reason)
            continue
        seen.add(rec_id)
        if max_auto_bleu is not None and repetition_score(rec, units[1], units[0]) >= max_auto_bleu:
            summary.n_repetitive += 1
            continue
        pairs.append(pair)
    summary.n_pairs = len(pairs)
    return pairs, summary


def _parse_line(line: str) -> dict[str, Any]:
    try:
        rec = json.loads(line)
    except json.JSONDecodeError as e:
        raise ManifestError(f"not valid JSON ({e.msg})") from e
    if not isinstance(rec, dict):
        raise ManifestError(f"expected a JSON object, got {type(rec).__name__}")
    return rec


def split_heldout(pairs: list[PreferencePair], fraction: float, seed: int = 0
                  ) -> tuple[list[PreferencePair], list[PreferencePair]]:
    """Stable train/held-out split by a hash of each pair's id (not by row order)."""
    if not fraction:
        return list(pairs), []
    train, held = [], []
    for p in pairs:
        h = int(hashlib.sha1(f"{seed}:{p.id}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        (held if h < fraction else train).append(p)
    if not train or (not held and len(pairs) > 1):
        every = max(2, round(1 / fraction))
        held = [p for i, p in enumerate(pairs) if i % every == 0]
        train = [p for i, p in enumerate(pairs) if i % every != 0]
    return train, held


def pairs_hash(pairs: Sequence[PreferencePair]) -> str:
    """Content hash of tokenised pairs (ids + tokens), for the reference cache key."""
    h = hashlib.sha256()
    for p in pairs:
        h.update(p.id.encode())
        for arr in (p.prompt, p.chosen, p.rejected):
            h.update(b"|")
            h.update(np.ascontiguousarray(arr, dtype=np.int64).tobytes())
    return h.hexdigest()[:16]

