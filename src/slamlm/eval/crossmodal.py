"""Cross-modal StoryCloze for interleaved SpeechLMs: a prompt in one modality, the ending in
the other.

For a pair of stories (correct vs wrong ending) with word alignments and units, the shared
word prefix is the prompt and the rest the ending. Each direction builds

    [bos] <text> prompt-text-tokens <speech> ending-units          ("text>speech")
    [bos] <speech> prompt-units <text> ending-text-tokens          ("speech>text")

(and the same-modality "text>text" / "speech>speech" controls, with no marker in between)
and scores only the ending's tokens (the marker is given, not scored). Two normalisations:

- ``full``: log-softmax over the whole vocabulary;
- ``restricted``: log-softmax renormalised over the ending modality's token range only (units
  or text tokens), so probability mass the model puts on the other modality or the markers
  does not count against an ending.

A pair scores 1 when the correct ending's log-prob beats the wrong one's, 0.5 on a tie (the
modelling-metric convention); both summed and per-token mean log-probs are reported.

Input (``crossmodal.jsonl``), one pair a line; a story is its words + deduplicated units::

    {"id": "0", "positive": {"words": [["the", 0.0, 0.2], ...], "units": [...],
     "durations": [...]}, "negative": {...}}

:func:`pairs_from_benchmark` builds it from a StoryCloze ``pairs.jsonl`` + word timings (a
manifest with ``words``, or by default the ``texts.jsonl`` of ``slam synth benchmarks``) + a
units folder (joined by id).

Example:
    >>> # res = evaluate_crossmodal(model, vocab, tokenize, read_crossmodal("x.jsonl"))
    >>> # res["text>speech"]["restricted"]["acc_mean"]
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from slamlm.interleave.spans import SPEECH, interleave, split_units, word_text, word_unit_spans
from slamlm.io import ManifestError, atomic_write_json, read_jsonl, write_jsonl
from slamlm.vocab import UnitVocab

log = logging.getLogger(__name__)

DIRECTIONS = ("text>speech", "speech>text", "text>text", "speech>speech")
NORMS = ("full", "restricted")


@dataclass(frozen=True)
class Story:
    """One spoken story: word alignments ``[[word, start_s, end_s], ...]`` + dedup units."""

    words: list[Any]
    units: list[int]
    durations: list[int]

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "story") -> Story:
        try:
            units = [int(u) for u in d["units"]]
            return cls(list(d["words"]), units, [int(x) for x in d.get("durations")
                                                 or [1] * len(units)])
        except (KeyError, TypeError, ValueError) as e:
            raise ManifestError(f"{where}: needs 'words', 'units' (+ 'durations'): {e}") from e

    def names(self) -> list[str]:
        return [word_text(w) for w in self.words]


def shared_prefix(a: Sequence[str], b: Sequence[str]) -> int:
    """Number of leading words two stories share (the prompt length).

    Example:
        >>> shared_prefix("the cat sat".split(), "the cat ran".split())
        2
    """
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def build_sequence(story: Story, n_prompt: int, direction: str, tokenize: Callable[[str], Any],
                   vocab: UnitVocab, frame_rate: float = 25.0) -> tuple[list[int], int]:
    """(tokens, number of trailing tokens to score) for one story and direction."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction {direction!r} is not one of {DIRECTIONS}")
    src, dst = direction.split(">")
    n = len(story.words)
    per_word: list[Any] = [[]] * n
    if SPEECH in (src, dst):
        per_word = split_units(story.units,
                               word_unit_spans(story.durations, story.words, frame_rate))
    # each side is one span of :func:`interleave`, so it starts with its modality marker
    prompt = interleave(story.words, per_word, [(0, n_prompt, src)], tokenize, vocab)
    ending = interleave(story.words, per_word, [(n_prompt, n, dst)], tokenize, vocab)
    mid = ending[:1] if src != dst else []  # same modality: no marker in between
    return [vocab.bos_id, *prompt, *mid, *ending[1:]], len(ending) - 1


def ending_logprobs(model: Any, seqs: list[list[int]], n_score: list[int],
                    restrict: tuple[int, int] | None = None, batch_size: int = 16
                    ) -> list[np.ndarray]:
    """log p of the last ``n_score[i]`` tokens of each sequence (right-padded batches, no grad).

    ``restrict=(lo, hi)`` renormalises the log-softmax over token ids ``[lo, hi)`` only.
    """
    return _ending_logprobs(model, seqs, n_score, [restrict], batch_size)[0]


def _ending_logprobs(model: Any, seqs: list[list[int]], n_score: list[int],
                     restricts: Sequence[tuple[int, int] | None], batch_size: int
                     ) -> list[list[np.ndarray]]:
    """:func:`ending_logprobs` for several normalisations from one forward per batch."""
    import torch

    dev = next(model.parameters()).device
    out: list[list[np.ndarray]] = [[np.zeros(0)] * len(seqs) for _ in restricts]
    order = sorted(range(len(seqs)), key=lambda i: -len(seqs[i]))
    for b in range(0, len(order), batch_size):
        idx = order[b:b + batch_size]
        width = len(seqs[idx[0]])
        ids = torch.zeros(len(idx), width, dtype=torch.long)
        for r, i in enumerate(idx):
            ids[r, :len(seqs[i])] = torch.tensor(seqs[i])
        ids = ids.to(dev)
        with torch.inference_mode():
            logits = model(ids).float()[:, :-1]  # (B, T-1, V), causal: padding after
        for res, restrict in zip(out, restricts):
            lo, hi = restrict or (0, logits.shape[-1])
            lp = torch.log_softmax(logits[..., lo:hi], dim=-1)
            tgt = (ids[:, 1:] - lo).clamp(0, hi - lo - 1)
            tok_lp = lp.gather(-1, tgt.unsqueeze(-1)).squeeze(-1).cpu().numpy()
            for r, i in enumerate(idx):
                n, k = len(seqs[i]), n_score[i]
                res[i] = tok_lp[r, n - 1 - k:n - 1].astype(np.float64)
    return out


def _modality_range(direction: str, vocab: UnitVocab) -> tuple[int, int]:
    if direction.endswith(">speech"):
        return vocab.unit_offset, vocab.unit_offset + vocab.n_units
    return vocab.text_offset, vocab.text_offset + vocab.n_text


def _accuracy(pos: np.ndarray, neg: np.ndarray) -> float:
    return float(np.mean(np.where(pos > neg, 1.0, np.where(pos == neg, 0.5, 0.0))))


def evaluate_crossmodal(model: Any, vocab: UnitVocab, tokenize: Callable[[str], Any],
                        pairs: list[dict[str, Any]], directions: Sequence[str] = DIRECTIONS,
                        frame_rate: float = 25.0, batch_size: int = 16) -> dict[str, Any]:
    """Accuracy per direction and normalisation: ``res[direction][norm]["acc_sum"|"acc_mean"]``.

    ``pairs``: ``{"id", "positive": Story, "negative": Story}``.
    """
    res: dict[str, Any] = {"n_pairs": len(pairs)}
    for d in directions:
        seqs, n_score = [], []
        for p in pairs:
            n_prompt = shared_prefix(p["positive"].names(), p["negative"].names())
            for side in ("positive", "negative"):
                s, k = build_sequence(p[side], n_prompt, d, tokenize, vocab, frame_rate)
                if k == 0:
                    raise ValueError(f"pair {p['id']}: the {side} story has no ending after "
                                     f"the {n_prompt} shared words")
                seqs.append(s)
                n_score.append(k)
        restricts = [_modality_range(d, vocab) if norm == "restricted" else None
                     for norm in NORMS]
        res[d] = {}
        for norm, lps in zip(NORMS, _ending_logprobs(model, seqs, n_score, restricts,
                                                     batch_size)):
            sums = np.array([lp.sum() for lp in lps]).reshape(-1, 2)
            means = np.array([lp.mean() for lp in lps]).reshape(-1, 2)
            res[d][norm] = {"acc_sum": _accuracy(sums[:, 0], sums[:, 1]),
                            "acc_mean": _accuracy(means[:, 0], means[:, 1]),
                            "logp_pos_mean": float(means[:, 0].mean())}
    return res


def read_crossmodal(path: str | Path) -> list[dict[str, Any]]:
    """Pairs of :class:`Story` from a ``crossmodal.jsonl`` (see the module doc)."""
    pairs = []
    for n, r in enumerate(read_jsonl(path), 1):
        where = f"{path} line {n}"
        if "positive" not in r or "negative" not in r:
            raise ManifestError(f"{where}: needs 'positive' and 'negative' stories")
        pairs.append({"id": str(r.get("id", n)),
                      "positive": Story.from_dict(r["positive"], f"{where} positive"),
                      "negative": Story.from_dict(r["negative"], f"{where} negative")})
    if not pairs:
        raise ManifestError(f"{path}: no pairs")
    return pairs


def pairs_from_benchmark(pairs_jsonl: str | Path, words_manifest: str | Path | None,
                         units: str | Path, out: str | Path) -> Path:
    """Join a StoryCloze ``pairs.jsonl`` (sides are wav paths) with word timings and units.

    ``words_manifest`` None: the benchmark's own ``texts.jsonl`` (next to the ``sSC/`` folder;
    ``slam synth benchmarks`` keeps the TTS word timings there). A side ``0_correct.wav`` in
    folder ``sSC/`` is looked up by id ``sSC/0_correct`` (the ``slam units`` / ``slam synth``
    id) or ``0_correct``. Writes ``out`` (crossmodal.jsonl).

    Example:
        >>> # pairs_from_benchmark("bench/sSC/pairs.jsonl", None, "units/bench", "cm.jsonl")
    """
    from slamlm.interleave.pack import load_units, record_words

    pairs_jsonl = Path(pairs_jsonl)
    if words_manifest is None:
        words_manifest = pairs_jsonl.parent.parent / "texts.jsonl"
        if not Path(words_manifest).is_file():
            raise FileNotFoundError(f"{words_manifest} is missing: pass a manifest with 'words' "
                                    "or re-run slam synth benchmarks")
    words = {str(r["id"]): record_words(r) for r in read_jsonl(words_manifest)}
    unit_recs = load_units(units)

    def story(side: str, where: str) -> dict[str, Any]:
        stem = str(Path(side).with_suffix(""))
        for rid in (f"{pairs_jsonl.parent.name}/{stem}", stem):
            if rid in unit_recs and words.get(rid):
                u = unit_recs[rid]
                return {"words": words[rid], "units": u["units"], "durations": u.get("durations")}
        raise ManifestError(f"{where}: no units + word timings for {side} (ids tried: "
                            f"{pairs_jsonl.parent.name}/{stem}, {stem})")

    rows = [{"id": str(r["id"]), "positive": story(r["positive"], f"{pairs_jsonl} {r['id']}"),
             "negative": story(r["negative"], f"{pairs_jsonl} {r['id']}")}
            for r in read_jsonl(pairs_jsonl)]
    return write_jsonl(out, rows)


def run_crossmodal(checkpoint: str | Path, pairs: str | Path, out: str | Path,
                   directions: Sequence[str] = DIRECTIONS, device: str = "cpu") -> Path:
    """Score ``pairs`` (crossmodal.jsonl) with an interleaved checkpoint; writes results.json."""
    from slamlm.interleave.model import load_interleaved

    model, meta, tok = load_interleaved(checkpoint, device=device)
    vocab = UnitVocab.from_dict(meta["vocab"])
    res = evaluate_crossmodal(model, vocab, lambda s: tok.encode(s, add_special_tokens=False),
                              read_crossmodal(pairs), directions)
    res.update({"checkpoint": str(checkpoint), "pairs": str(pairs)})
    path = Path(out) / "crossmodal_results.json"
    atomic_write_json(path, res)
    for d in directions:
        log.info("%-14s full %.3f  restricted %.3f (acc of mean log-prob)", d,
                 res[d]["full"]["acc_mean"], res[d]["restricted"]["acc_mean"])
    return path


@dataclass(frozen=True)
class CrossmodalConfig:
    """``slam eval-crossmodal``: an interleaved checkpoint + crossmodal.jsonl -> results."""

    checkpoint: str = ""  # interleaved checkpoint folder
    pairs: str = ""  # crossmodal.jsonl (see the module docstring)
    out: str = ""  # folder for crossmodal_results.json
    directions: tuple[str, ...] = DIRECTIONS
    device: str = "cpu"


def run_eval_crossmodal(cfg: CrossmodalConfig) -> Path:
    """Library entry point of ``slam eval-crossmodal`` (see :func:`run_crossmodal`)."""
    for name in ("checkpoint", "pairs", "out"):
        if not getattr(cfg, name):
            raise ValueError(f"slam eval-crossmodal: {name} is required (CKPT --pairs F --out D)")
    return run_crossmodal(cfg.checkpoint, cfg.pairs, cfg.out, list(cfg.directions), cfg.device)
