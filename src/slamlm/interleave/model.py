"""Interleaved (speech + text) SpeechLM init from a text LM, SpiritLM-style.

Vocabulary (:class:`slamlm.vocab.UnitVocab` with ``n_text`` = the text LM's embedding rows)::

    0 <pad>, 1 <bos>, 2 <eos> | 3 .. 3+K-1 units | text_offset .. : the text LM's own tokens
    | <text> | <speech>

Embedding (and untied head) rows are initialised as follows; every transformer weight is kept:

- text rows: the text LM's rows, copied unchanged (row ``t`` -> ``text_offset + t``), so the
  model still reads and writes text exactly as the text LM did;
- unit rows: TWIST-style, with the speech-only init's :func:`slamlm.model.init.init_rows`
  (default ``stats``: per-dimension mean + std * N(0, 1) of the text rows);
- ``<text>``/``<speech>`` markers and ``<pad>``: the mean text embedding;
- ``<bos>``/``<eos>``: the text LM's own bos/eos rows when it has them, else the mean.

RoPE theta is kept from the text LM (text knowledge depends on it), unlike the speech-only
Slam recipe which resets it to 10 000; pass ``rope_theta`` to override.

The checkpoint (``save_interleaved``) is a normal SpeechLM checkpoint folder whose
``config.json`` also records ``text_tokenizer`` (sub-folder written with
``tokenizer.save_pretrained``) and ``text_lm`` (where it came from), so packing and eval
tokenise text exactly as the model was initialised.

Example:
    >>> # model, meta = interleaved_init("path/to/SmolLM2-135M", n_units=500)
    >>> # save_interleaved(model, meta, "run/init_il")
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from slamlm.io import atomic_dir
from slamlm.model.checkpoint import load_checkpoint, read_meta, write_checkpoint_files
from slamlm.model.hf import import_hf
from slamlm.model.init import init_rows
from slamlm.model.transformer import SpeechLM
from slamlm.vocab import UnitVocab

log = logging.getLogger(__name__)

TOKENIZER_DIR = "text_tokenizer"


def load_text_lm(source: str | Path) -> tuple[Any, Any]:
    """(transformers causal LM in fp32, its tokenizer) from a folder, hub id or ``.gguf`` file."""
    from transformers import AutoTokenizer

    from slamlm.model.hf import load_hf_model

    src = Path(source)
    lm = load_hf_model(source).eval()  # splits a .gguf path itself; clear error if missing
    kw: dict[str, Any] = {"gguf_file": src.name} if src.suffix == ".gguf" else {}
    try:
        tok = AutoTokenizer.from_pretrained(str(src.parent if kw else source), **kw)
    except (OSError, ValueError) as e:
        raise FileNotFoundError(f"{src}: cannot load the text LM's tokenizer ({e}); the folder "
                                "needs tokenizer files next to the weights") from e
    return lm, tok


def _new_rows(old: torch.Tensor, vocab: UnitVocab, special_src: dict[int, int | None],
              generator: torch.Generator, embed_init: str = "stats") -> torch.Tensor:
    """Build the (V_new, C) table from the text LM's (n_text, C) rows (see module doc)."""
    mean = old.mean(0)
    new = mean.expand(vocab.size, -1).clone()
    new[vocab.unit_offset:vocab.unit_offset + vocab.n_units] = init_rows(
        old, vocab.n_units, embed_init, generator).to(old.dtype)
    new[vocab.text_offset:vocab.text_offset + vocab.n_text] = old
    for our_id, text_id in special_src.items():
        if text_id is not None and 0 <= text_id < old.shape[0]:
            new[our_id] = old[text_id]
    return new


def interleaved_init(
    text_lm_source: str | Path, n_units: int = 500, rope_theta: float | None = None,
    seed: int = 0, units_identity: dict[str, Any] | None = None, embed_init: str = "stats",
) -> tuple[SpeechLM, dict[str, Any]]:
    """Interleaved SpeechLM from a Llama/Qwen2 text LM; returns (model, checkpoint meta).

    ``meta`` holds ``model``, ``vocab``, ``units``, ``init``, ``text_lm`` and, under
    ``"_tokenizer"`` (not JSON; :func:`save_interleaved` writes it out), the text tokenizer.
    """
    lm, tok = load_text_lm(text_lm_source)
    n_text = int(lm.get_input_embeddings().weight.shape[0])
    if len(tok) > n_text:
        raise ValueError(f"{text_lm_source}: tokenizer has {len(tok)} tokens but the model only "
                         f"{n_text} embedding rows")
    vocab = UnitVocab(n_units=n_units, n_text=n_text)
    text_model = import_hf(lm)  # native SpeechLM over the text vocabulary (checks the family)
    cfg = dataclasses.replace(text_model.config, vocab_size=vocab.size,
                              rope_theta=rope_theta or text_model.config.rope_theta)
    sd = {k: v for k, v in text_model.state_dict().items() if k != "lm_head.weight"}
    g = torch.Generator().manual_seed(seed)
    specials = {vocab.bos_id: tok.bos_token_id, vocab.eos_id: tok.eos_token_id}
    emb = text_model.model.embed_tokens.weight.detach()
    sd["model.embed_tokens.weight"] = _new_rows(emb, vocab, specials, g, embed_init)
    if not cfg.tie_embeddings:
        sd["lm_head.weight"] = _new_rows(text_model.lm_head.weight.detach(), vocab, specials, g,
                                         embed_init)
    model = SpeechLM(cfg)
    model.load_state_dict(sd, strict=not cfg.tie_embeddings)
    model.tie_weights()
    meta = {
        "model": cfg.to_dict(), "vocab": vocab.to_dict(), "units": units_identity or {},
        "init": {"method": "interleaved-twist", "text_lm": str(text_lm_source), "seed": seed,
                 "embed_init": embed_init, "markers": "mean text row"},
        "text_lm": str(text_lm_source), "text_tokenizer": TOKENIZER_DIR,
        "text_tokenizer_files": {"name_or_path": str(getattr(tok, "name_or_path", "")),
                                 "len": str(len(tok))},
        "tokenizers": {"text": {"class": type(tok).__name__, "n_text": n_text,
                                "offset": vocab.text_offset},
                       "units": {"n_units": n_units, "offset": vocab.unit_offset}},
        "_tokenizer": tok,
    }
    log.info("interleaved init from %s: %d units + %d text tokens (+2 markers), %s",
             text_lm_source, n_units, n_text, model.extra_repr())
    return model, meta


def save_interleaved(model: SpeechLM, meta: dict[str, Any], folder: str | Path) -> Path:
    """Write a checkpoint folder with the text tokenizer inside (``text_tokenizer/``)."""
    meta = dict(meta)
    tok = meta.pop("_tokenizer", None)
    folder = Path(folder)
    # fallback for checkpoints that lack their own copy (training checkpoints copy the folder)
    meta["text_tokenizer_dir"] = str((folder / TOKENIZER_DIR).resolve())
    with atomic_dir(folder) as tmp:  # weights, config.json and tokenizer appear together
        write_checkpoint_files(model, meta, tmp)
        if tok is not None:
            tok.save_pretrained(str(tmp / TOKENIZER_DIR))
    return folder


def load_text_tokenizer(folder: str | Path) -> Any:
    """The text tokenizer of an interleaved checkpoint: its ``text_tokenizer/`` sub-folder, or
    (training checkpoints that did not copy it) the init folder named in ``config.json``."""
    from transformers import AutoTokenizer

    folder = Path(folder)
    meta = read_meta(folder)
    candidates = [folder / meta.get("text_tokenizer", TOKENIZER_DIR)]
    if meta.get("text_tokenizer_dir"):
        candidates.append(Path(meta["text_tokenizer_dir"]))
    for sub in candidates:
        if sub.is_dir():
            return AutoTokenizer.from_pretrained(str(sub))
    raise FileNotFoundError(
        f"{folder}: no text tokenizer (looked in {', '.join(map(str, candidates))}); "
        "is it an interleaved checkpoint? copy text_tokenizer/ from the `interleaved_init` folder")


def load_interleaved(folder: str | Path, device: str = "cpu") -> tuple[SpeechLM, dict[str, Any], Any]:
    """(model, meta, text tokenizer) from an interleaved checkpoint folder."""
    folder = Path(folder)
    model, meta = load_checkpoint(folder, device=device)
    if not UnitVocab.from_dict(meta["vocab"]).n_text:
        raise ValueError(f"{folder}: not an interleaved checkpoint (vocab has no text tokens)")
    return model.eval(), meta, load_text_tokenizer(folder)


MODALITY_NAMES = ("unit", "text", "marker", "special")


def per_modality_loss(logits: torch.Tensor, targets: torch.Tensor, vocab: UnitVocab,
                      ignore_index: int = -100) -> dict[str, float]:
    """Mean next-token NLL split by the *target* token's kind: unit / text / marker / special.

    ``logits`` (B, T, V), ``targets`` (B, T) with ``ignore_index`` masked. Returns
    ``{"unit": ..., "text": ..., "marker": ..., "special": ..., "all": ..., "n_unit": ...}``
    (a kind with no targets is left out).

    Example:
        >>> v = UnitVocab(n_units=2, n_text=3)
        >>> out = per_modality_loss(torch.zeros(1, 2, v.size), torch.tensor([[3, 5]]), v)
        >>> round(out["unit"], 3), round(out["text"], 3), out["n_text"]
        (2.303, 2.303, 1)
    """
    import torch.nn.functional as F

    from slamlm.interleave.spans import token_modality

    y = targets.reshape(-1)
    nll = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), y,
                          ignore_index=ignore_index, reduction="none")
    keep = y != ignore_index
    kind = torch.from_numpy(token_modality(y.clamp(min=0).cpu().numpy(), vocab)).to(y.device)
    out: dict[str, float] = {}
    for code, name in enumerate(MODALITY_NAMES):
        m = keep & (kind == code)
        if m.any():
            out[name] = float(nll[m].mean())
            out[f"n_{name}"] = int(m.sum())
    if keep.any():
        out["all"] = float(nll[keep].mean())
        out["n_all"] = int(keep.sum())
    return out


def modality_totals(model: torch.nn.Module, batches: Any, vocab: UnitVocab,
                    device: torch.device | str) -> dict[str, list[float]]:
    """``{kind: [summed NLL, n targets]}`` over micro-batches (``input_ids``/``targets``/
    ``doc_ids`` arrays, as ``slamlm.data.windows`` makes), for ``all`` and every target kind.
    The one per-modality accumulator: the training loop's validation and
    :func:`evaluate_modalities` both use it."""
    sums: dict[str, list[float]] = {}
    for mb in batches:
        x, y, d = (torch.from_numpy(np.ascontiguousarray(a)).to(device)
                   for a in (mb.input_ids, mb.targets, mb.doc_ids))
        part = per_modality_loss(model(x, doc_ids=d), y, vocab)
        for name in (*MODALITY_NAMES, "all"):
            if name in part:
                tot = sums.setdefault(name, [0.0, 0])
                tot[0] += part[name] * part[f"n_{name}"]
                tot[1] += part[f"n_{name}"]
    return sums


@torch.no_grad()
def evaluate_modalities(model: torch.nn.Module, tokens: str | Path, split: str = "val",
                        context: int = 1024, micro_batch: int = 8,
                        max_windows: int | None = None, packing: str = "ffd"
                        ) -> dict[str, float]:
    """Per-modality validation loss of a model on packed (interleaved) token shards.

    Token-weighted means over all rows (``max_windows`` caps the count); rows as training's
    validation builds them (whole documents, ``ffd``), or ``packing="windows"``.
    """
    from slamlm.data.documents import packed_rows
    from slamlm.data.shards import TokenShard
    from slamlm.data.windows import eval_batches

    shard = TokenShard.open(tokens, split)
    data = packed_rows(shard, context, packing, seed=0, pad_last=True)
    dev = next(model.parameters()).device
    model.eval()
    sums = modality_totals(model, eval_batches(data, micro_batch, 0, 1, max_windows),
                           shard.vocab, dev)
    return {k: v for name, (tot, n) in sums.items() for k, v in ((name, tot / n),
                                                                  (f"n_{name}", int(n)))}


@dataclass(frozen=True)
class InterleavedInitConfig:
    """``slam init-interleaved``: a Llama/Qwen2-family text LM -> interleaved SpeechLM."""

    text_lm: str = ""  # text LM folder, hub id or .gguf file
    out: str = ""  # checkpoint folder to write
    n_units: int = 500
    rope_theta: float | None = None  # None: keep the text LM's
    seed: int = 0


def run_init_interleaved(cfg: InterleavedInitConfig) -> Path:
    """Library entry point of ``slam init-interleaved``: the written checkpoint folder."""
    if not cfg.text_lm or not cfg.out:
        raise ValueError("slam init-interleaved TEXT_LM --out FOLDER")
    model, meta = interleaved_init(cfg.text_lm, cfg.n_units, cfg.rope_theta, cfg.seed)
    return save_interleaved(model, meta, cfg.out)
