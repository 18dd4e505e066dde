"""Interleaved (speech + text) SpeechLM init from a text LM, SpiritLM-style.

Vocabulary (:class:`slamlm.vocab.UnitVocab` with ``n_text`` = the text LM's embedding rows)::

    0 <pad>, 1 <bos>, 2 <eos> | 3 .. 3+K-1 units | text_offset .. : the text LM's own tokens
    | <text> | <speech>

Embedding (and untied head) rows are initialised as follows; every transformer weight is kept:

- text rows: the text LM's rows, copied unchanged (row ``t`` -> ``text_offset + t``), so the
  model still reads and writes text exactly as the text LM did;
- unit rows: TWIST-style, as the speech-only init does (:func:`init_unit_rows`): the mean
  text embedding plus Gaussian noise with the text rows' per-dimension std;
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
import json
import logging
from pathlib import Path
from typing import Any

import torch

from slamlm.io import atomic_dir
from slamlm.model.checkpoint import load_checkpoint, write_checkpoint_files
from slamlm.model.hf import import_hf
from slamlm.model.transformer import SpeechLM
from slamlm.vocab import UnitVocab

log = logging.getLogger(__name__)

TOKENIZER_DIR = "text_tokenizer"


def load_text_lm(source: str | Path) -> tuple[Any, Any]:
    """(transformers causal LM in fp32, its tokenizer) from a folder, hub id or ``.gguf`` file."""
    from transformers import AutoTokenizer

    from slamlm.model.hf import load_hf_model

    src = Path(source)
    kw: dict[str, Any] = {}
    if src.suffix == ".gguf":
        kw["gguf_file"], source = src.name, str(src.parent)
    tok = AutoTokenizer.from_pretrained(str(source), **kw)
    return load_hf_model(source, gguf_file=kw.get("gguf_file")).eval(), tok


def init_unit_rows(text_rows: torch.Tensor, n_units: int, generator: torch.Generator) -> torch.Tensor:
    """TWIST-style unit rows: mean text row + N(0, per-dim std of the text rows)."""
    mean, std = text_rows.mean(0), text_rows.std(0)
    noise = torch.randn(n_units, text_rows.shape[1], generator=generator, dtype=text_rows.dtype)
    return mean + noise * std


def _new_rows(old: torch.Tensor, vocab: UnitVocab, special_src: dict[int, int | None],
              generator: torch.Generator) -> torch.Tensor:
    """Build the (V_new, C) table from the text LM's (n_text, C) rows (see module doc)."""
    mean = old.mean(0)
    new = mean.expand(vocab.size, -1).clone()
    new[vocab.unit_offset:vocab.unit_offset + vocab.n_units] = init_unit_rows(
        old, vocab.n_units, generator)
    new[vocab.text_offset:vocab.text_offset + vocab.n_text] = old
    for our_id, text_id in special_src.items():
        if text_id is not None and 0 <= text_id < old.shape[0]:
            new[our_id] = old[text_id]
    return new


def interleaved_init(
    text_lm_source: str | Path, n_units: int = 500, rope_theta: float | None = None,
    seed: int = 0, units_identity: dict[str, Any] | None = None,
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
    sd["model.embed_tokens.weight"] = _new_rows(emb, vocab, specials, g)
    if not cfg.tie_embeddings:
        sd["lm_head.weight"] = _new_rows(text_model.lm_head.weight.detach(), vocab, specials, g)
    model = SpeechLM(cfg)
    model.load_state_dict(sd, strict=not cfg.tie_embeddings)
    model.tie_weights()
    meta = {
        "model": cfg.to_dict(), "vocab": vocab.to_dict(), "units": units_identity or {},
        "init": {"method": "interleaved-twist", "text_lm": str(text_lm_source), "seed": seed,
                 "units": "mean + N(0, std) of text rows", "markers": "mean text row"},
        "text_lm": str(text_lm_source), "text_tokenizer": TOKENIZER_DIR,
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
    with atomic_dir(folder) as tmp:  # weights, config.json and tokenizer appear together
        write_checkpoint_files(model, meta, tmp)
        if tok is not None:
            tok.save_pretrained(str(tmp / TOKENIZER_DIR))
    return folder


def load_text_tokenizer(folder: str | Path) -> Any:
    """The text tokenizer saved in an interleaved checkpoint folder."""
    from transformers import AutoTokenizer

    folder = Path(folder)
    meta = json.loads((folder / "config.json").read_text())
    sub = folder / meta.get("text_tokenizer", TOKENIZER_DIR)
    if not sub.is_dir():
        raise FileNotFoundError(f"{folder}: no {sub.name}/ (not an interleaved checkpoint?)")
    return AutoTokenizer.from_pretrained(str(sub))


def load_interleaved(folder: str | Path, device: str = "cpu") -> tuple[SpeechLM, dict[str, Any], Any]:
    """(model, meta, text tokenizer) from an interleaved checkpoint folder."""
    folder = Path(folder)
    model, meta = load_checkpoint(folder, device=device)
    if not UnitVocab.from_dict(meta["vocab"]).n_text:
        raise ValueError(f"{folder}: not an interleaved checkpoint (vocab has no text tokens)")
    return model.eval(), meta, load_text_tokenizer(folder)
