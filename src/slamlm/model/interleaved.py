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

import json
import logging
from pathlib import Path
from typing import Any

import torch

from slamlm.model.config import SpeechLMConfig
from slamlm.model.transformer import SpeechLM
from slamlm.vocab import UnitVocab

log = logging.getLogger(__name__)

TOKENIZER_DIR = "text_tokenizer"


def load_text_lm(source: str | Path) -> tuple[Any, Any]:
    """(transformers causal LM in fp32, its tokenizer) from a folder, hub id or ``.gguf`` file."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src = Path(source)
    kw: dict[str, Any] = {}
    if src.suffix == ".gguf":
        kw["gguf_file"], source = src.name, str(src.parent)
    tok = AutoTokenizer.from_pretrained(str(source), **kw)
    lm = AutoModelForCausalLM.from_pretrained(str(source), dtype=torch.float32, **kw)
    return lm.eval(), tok


def hf_shape(hf_config: Any, vocab_size: int, rope_theta: float | None = None) -> SpeechLMConfig:
    """SpeechLMConfig with a Llama/Qwen2 transformers config's shape and a new vocabulary."""
    mt = hf_config.model_type
    if mt not in ("llama", "qwen2"):
        raise ValueError(f"interleaved init supports llama/qwen2 text LMs, got model_type {mt!r}")
    rope = getattr(hf_config, "rope_parameters", None) or {}
    theta = rope_theta or rope.get("rope_theta") or getattr(hf_config, "rope_theta", 10000.0)
    bias = True if mt == "qwen2" else bool(getattr(hf_config, "attention_bias", False))
    return SpeechLMConfig(
        vocab_size=vocab_size, hidden_size=hf_config.hidden_size,
        n_layers=hf_config.num_hidden_layers, n_heads=hf_config.num_attention_heads,
        n_kv_heads=hf_config.num_key_value_heads, intermediate_size=hf_config.intermediate_size,
        rope_theta=float(theta), qkv_bias=bias, tie_embeddings=bool(hf_config.tie_word_embeddings),
        rms_norm_eps=hf_config.rms_norm_eps, family=mt,
        head_dim=int(getattr(hf_config, "head_dim", 0) or 0),
        max_seq_len=int(getattr(hf_config, "max_position_embeddings", 1024)),
    )


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
    cfg = hf_shape(lm.config, vocab.size, rope_theta)
    model = SpeechLM(cfg)
    sd = {k: v for k, v in lm.state_dict().items() if "rotary" not in k}
    emb = sd.pop("model.embed_tokens.weight")
    head = sd.pop("lm_head.weight", None)
    g = torch.Generator().manual_seed(seed)
    specials = {vocab.bos_id: tok.bos_token_id, vocab.eos_id: tok.eos_token_id}
    sd["model.embed_tokens.weight"] = _new_rows(emb, vocab, specials, g)
    if not cfg.tie_embeddings:
        sd["lm_head.weight"] = _new_rows(head if head is not None else emb, vocab, specials, g)
    missing, unexpected = model.load_state_dict(sd, strict=False)
    bad = [k for k in missing if not (cfg.tie_embeddings and k == "lm_head.weight")]
    if bad or unexpected:
        raise ValueError(f"{text_lm_source}: weights do not match the SpeechLM layout "
                         f"(missing {bad[:5]}, unexpected {unexpected[:5]})")
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
    try:
        from slamlm.model.checkpoint import save_checkpoint
    except ImportError:  # model package's checkpoint I/O not available: same layout here
        save_checkpoint = _save_plain
    save_checkpoint(model, meta, folder)
    if tok is not None:
        tok.save_pretrained(str(folder / TOKENIZER_DIR))
    return folder


def _save_plain(model: SpeechLM, meta: dict[str, Any], folder: Path) -> None:
    from safetensors.torch import save_file

    from slamlm.io import atomic_dir

    with atomic_dir(folder) as tmp:
        sd = {k: v.contiguous() for k, v in model.state_dict().items()
              if not (model.config.tie_embeddings and k == "lm_head.weight")}
        save_file(sd, str(tmp / "model.safetensors"))
        (tmp / "config.json").write_text(json.dumps(meta, indent=2, default=str))


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
    try:
        from slamlm.model.checkpoint import load_checkpoint
        model, meta = load_checkpoint(folder, device=device)
    except ImportError:
        from safetensors.torch import load_file

        meta = json.loads((folder / "config.json").read_text())
        model = SpeechLM(SpeechLMConfig.from_dict(meta["model"]))
        model.load_state_dict(load_file(str(folder / "model.safetensors")), strict=False)
        model.tie_weights()
        model.to(device)
    if not UnitVocab.from_dict(meta["vocab"]).n_text:
        raise ValueError(f"{folder}: not an interleaved checkpoint (vocab has no text tokens)")
    return model.eval(), meta, load_text_tokenizer(folder)
