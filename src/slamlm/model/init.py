"""TWIST init (a text LM's transformer + unit embeddings) and random init from a named shape.

TWIST keeps every transformer weight of the text LM and replaces the embedding matrix and
LM head by the unit vocabulary (:class:`slamlm.vocab.UnitVocab`); RoPE theta is set to 10k
(the Slam recipe) and dropout is 0. The new rows are initialised by ``embed_init``:

- ``stats`` (default): each row ~ N(mean, diag(std^2)) of the text embedding rows (per-dim
  mean and std), so unit rows have the norms and offsets the transformer expects; then the
  final norm's weight is scaled down (:func:`calibrate_logit_scale`) so the initial logits
  vary by ~``logit_std`` (1) nat across the vocabulary. Without that, random rows inherit the
  text LM's confidence (its logits vary by ~6 nats across tokens: the final RMSNorm output,
  of norm ~sqrt(C) x weights ~1.8, against rows of per-dim std ~0.1) but point at random
  tokens: the initial loss was log(V) + ~s^2/2 = 15 nats on 103 tokens (SmolLM2-135M, first 6
  blocks) instead of log(103) = 4.6. This is the one text-LM weight TWIST changes (a scale);
- ``mean``: the text embedding mean + 0.1 * per-dim std noise (rows start nearly equal);
- ``keep-first``: the text LM's first ``V`` rows, as slamkit does (``resize_token_embeddings``
  keeps rows 0..V-1: special tokens, bytes, punctuation);
- ``random``: N(0, initializer_range), as for a model trained from scratch.

An untied head is initialised the same way from the text LM's head. Seeded, so the same command gives the same weights. ``slam init`` also takes
a slamkit checkpoint folder as ``text_lm``: it is moved into our layout for continued
training (:func:`slamlm.model.slamkit.to_slamlm_layout`).

Example:
    $ slam init HuggingFaceTB/SmolLM2-135M --out run/init --units 500
    $ slam init --shape slam-358m --out run/init_random      # no TWIST
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn

from slamlm.config import dump_config, to_dict
from slamlm.io import atomic_dir
from slamlm.model.checkpoint import (
    CONFIG,
    WEIGHTS,
    read_json,
    read_meta,
    write_checkpoint_files,
)
from slamlm.model.config import named_shape
from slamlm.model.slamkit import is_slamkit_folder
from slamlm.model.transformer import SpeechLM
from slamlm.vocab import UnitVocab

log = logging.getLogger(__name__)

EmbedInit = Literal["stats", "mean", "keep-first", "random"]
METHODS = ("stats", "mean", "keep-first", "random")
LOGIT_STD = 1.0  # target spread (nats) of the initial logits for embed_init "stats"


@dataclass(frozen=True)
class InitConfig:
    """``slam init``: ``text_lm`` (folder, hub id or .gguf) for TWIST, else ``shape``."""

    out: str = "run/init"  # checkpoint folder to write
    text_lm: str = ""  # text LM folder, hub id or .gguf file (empty: random init of `shape`)
    gguf_file: str = ""  # GGUF file name inside the text_lm folder
    shape: str = "slam-358m"  # named shape for random init: tiny, small, slam-135m, slam-358m, slam-1b
    units: int = 500  # number of units (k of the k-means)
    embed_init: EmbedInit = "stats"  # unit rows: stats (text-row statistics), mean, keep-first (slamkit), random
    seed: int = 0
    rope_theta: float = 10000.0  # RoPE theta of the SpeechLM (the paper: 10 000)
    units_identity: str = ""  # JSON file with the unit extractor identity to record
    keep_layers: int = 0  # >0: keep only the first N transformer blocks (small-compute demos)
    force: bool = False


def init_rows(text: Tensor, n: int, method: str, gen: torch.Generator, std: float = 0.02) -> Tensor:
    """``n`` new embedding rows (n, C) from the text rows (V, C); see module docstring."""
    text = text.detach().float()
    if method == "keep-first":
        if n > text.shape[0]:
            raise ValueError(f"embed_init keep-first: the text LM has {text.shape[0]} rows, "
                             f"fewer than the {n} tokens of the unit vocabulary")
        return text[:n].clone()
    mean, sd = text.mean(0), text.std(0)
    noise = torch.randn(n, text.shape[1], generator=gen)
    if method == "stats":
        return mean + sd * noise
    if method == "mean":
        return mean + 0.1 * sd * noise
    if method == "random":
        return std * noise
    raise ValueError(f"embed_init must be one of {', '.join(METHODS)}, got {method!r}")


@torch.no_grad()
def calibrate_logit_scale(model: nn.Module, vocab: UnitVocab, target: float = LOGIT_STD,
                          gen: torch.Generator | None = None) -> float:
    """Scale the logits down so those of random unit sequences vary by ~``target`` nats
    across the vocabulary (never up); returns the factor (<= 1).

    Native models: the final RMSNorm weight is multiplied by the factor (logits are linear in
    it, so one pass is exact; the unit rows keep their drawn spread, which the blocks see).
    Generic models: the head rows' spread around their mean is shrunk instead (with a tied
    head this shrinks the inputs too).

    Example:
        >>> # calibrate_logit_scale(model, UnitVocab(100))   # ~0.17 for SmolLM2, 6 blocks
    """
    gen = gen or torch.Generator().manual_seed(0)
    ids = torch.randint(vocab.unit_offset, vocab.unit_offset + vocab.n_units, (4, 64),
                        generator=gen)
    ids[:, 0] = vocab.bos_id
    device = next(model.parameters()).device
    spread = float(model(ids.to(device)).std(-1).mean())
    factor = min(1.0, target / spread) if spread > 0 else 1.0
    if isinstance(model, SpeechLM):
        model.model.norm.weight.mul_(factor)
    else:
        head = model.hf.get_output_embeddings().weight
        mean = head.mean(0, keepdim=True)
        head.copy_(mean + (head - mean) * factor)
    log.info("initial logits spread %.2f nats across the vocabulary: scaled by %.3f to %.2f",
             spread, factor, spread * factor)
    return factor


def _zero_dropout(hf: nn.Module) -> None:
    for mod in hf.modules():
        if isinstance(mod, nn.Dropout):
            mod.p = 0.0
    for key, value in hf.config.to_dict().items():
        if ("dropout" in key or "pdrop" in key) and isinstance(value, float):
            setattr(hf.config, key, 0.0)


def _twist_native(text: SpeechLM, vocab: UnitVocab, method: str, gen: torch.Generator,
                  rope_theta: float) -> SpeechLM:
    cfg = dataclasses.replace(text.config, vocab_size=vocab.size, rope_theta=rope_theta)
    with torch.device("meta"):
        model = SpeechLM(cfg)
    state = {k: v for k, v in text.state_dict().items()
             if not k.startswith(("model.embed_tokens.", "lm_head."))}
    dtype = text.model.embed_tokens.weight.dtype
    state["model.embed_tokens.weight"] = init_rows(
        text.model.embed_tokens.weight, vocab.size, method, gen, cfg.initializer_range).to(dtype)
    if not cfg.tie_embeddings:
        state["lm_head.weight"] = init_rows(
            text.lm_head.weight, vocab.size, method, gen, cfg.initializer_range).to(dtype)
    model.load_state_dict(state, strict=not cfg.tie_embeddings, assign=True)
    model.tie_weights()
    return model.eval()


def _twist_generic(hf: nn.Module, vocab: UnitVocab, method: str, gen: torch.Generator):
    from slamlm.model.generic import GenericSpeechLM

    std = float(getattr(hf.config, "initializer_range", 0.02))
    old_in = hf.get_input_embeddings().weight.detach().clone()
    old_out = hf.get_output_embeddings().weight.detach().clone()
    hf.resize_token_embeddings(vocab.size)
    with torch.no_grad():
        hf.get_input_embeddings().weight.copy_(init_rows(old_in, vocab.size, method, gen, std))
        if hf.get_output_embeddings().weight is not hf.get_input_embeddings().weight:
            hf.get_output_embeddings().weight.copy_(init_rows(old_out, vocab.size, method, gen, std))
    _zero_dropout(hf)
    for name in ("pad_token_id", "bos_token_id", "eos_token_id"):
        setattr(hf.config, name, getattr(vocab, name.replace("_token", "")))
    return GenericSpeechLM(hf.eval())


def twist_init(text_lm: str | Path | nn.Module, vocab: UnitVocab, method: str = "stats",
               seed: int = 0, rope_theta: float = 10000.0, gguf_file: str | None = None,
               keep_layers: int = 0, logit_std: float = LOGIT_STD
               ) -> tuple[nn.Module, dict[str, Any]]:
    """Text LM -> SpeechLM over ``vocab`` (native for Llama/Qwen2 families, else generic).

    Returns ``(model, init_meta)``. ``text_lm`` may be a folder, hub id, ``.gguf`` path or
    a loaded transformers model. ``keep_layers`` > 0 keeps the first N blocks (before the
    ``stats`` rows are calibrated, so they fit the blocks that stay).
    """
    gen = torch.Generator().manual_seed(seed)
    model, source, src_type, src_vocab, total = _text_to_speech(
        text_lm, vocab, method, gen, rope_theta, gguf_file, keep_layers)
    meta = {"kind": "twist", "source": source, "gguf_file": gguf_file or "",
            "source_model_type": src_type, "source_vocab_size": src_vocab,
            "embed_init": method, "seed": seed, "rope_theta": rope_theta}
    if keep_layers:
        meta.update(source_layers=total, kept_layers=keep_layers)
        model = keep_first_layers(model, keep_layers)  # a GGUF read natively is cut already
    if method == "stats" and logit_std > 0:
        meta.update(logit_std=logit_std, logit_scale=calibrate_logit_scale(model, vocab, logit_std))
    return model, meta


def _text_to_speech(text_lm: str | Path | nn.Module, vocab: UnitVocab, method: str,
                    gen: torch.Generator, rope_theta: float, gguf_file: str | None,
                    keep_layers: int) -> tuple[nn.Module, str, str, int, int]:
    """The TWIST model before layer dropping and calibration, with (source, source model
    type, source vocabulary size, source blocks). A local llama-architecture GGUF file is read
    natively, only its first ``keep_layers`` blocks (transformers dequantises all of it: 2.5 s
    instead of 17 s for SmolLM2-135M, the same weights)."""
    from slamlm.model.hf import NATIVE_TYPES, import_hf, load_hf_model

    gguf = _gguf_path(text_lm, gguf_file)
    if gguf is not None:
        from slamlm.model.gguf_llama import gguf_architecture, load_gguf_llama

        if gguf_architecture(gguf) == "llama":
            text, total = load_gguf_llama(gguf, keep_layers)
            return (_twist_native(text, vocab, method, gen, rope_theta), str(text_lm), "llama",
                    text.config.vocab_size, total)
    hf = text_lm if isinstance(text_lm, nn.Module) else load_hf_model(text_lm, gguf_file or None)
    if hf.config.model_type in NATIVE_TYPES:
        model = _twist_native(import_hf(hf), vocab, method, gen, rope_theta)
    else:
        log.warning("%s is not Llama/Qwen2-family: using the (slower) generic HF path",
                    hf.config.model_type)
        model = _twist_generic(hf, vocab, method, gen)
    source = getattr(hf, "name_or_path", "") if isinstance(text_lm, nn.Module) else str(text_lm)
    return (model, str(source), hf.config.model_type, int(hf.config.vocab_size),
            int(getattr(model.config, "n_layers", 0) or hf.config.num_hidden_layers))


def _gguf_path(text_lm: str | Path | nn.Module, gguf_file: str | None) -> Path | None:
    """The GGUF file ``text_lm`` (+ ``gguf_file``) names, if it is a local one."""
    if isinstance(text_lm, nn.Module):
        return None
    p = Path(text_lm) / gguf_file if gguf_file else Path(text_lm)
    return p if p.suffix == ".gguf" and p.is_file() else None


def keep_first_layers(model: nn.Module, n: int) -> nn.Module:
    """Keep the first ``n`` blocks of a native SpeechLM (and say so in its config).

    A cheaper TWIST start for small-compute runs (e.g. the CPU demo): the kept blocks, the
    embeddings and the final norm are the text LM's own weights.

    Example:
        >>> # model = keep_first_layers(model, 6)   # SmolLM2-135M: 30 -> 6 blocks
    """
    if not isinstance(model, SpeechLM):
        raise ValueError("keep_layers works on native (Llama/Qwen2-family) models only")
    total = model.config.n_layers
    if not 0 < n <= total:
        raise ValueError(f"keep_layers={n}: the model has {total} blocks (use 1..{total})")
    model.model.layers = model.model.layers[:n]
    model.config = dataclasses.replace(model.config, n_layers=n)
    return model


def random_init(shape: str, vocab: UnitVocab, seed: int = 0, rope_theta: float = 10000.0
                ) -> tuple[SpeechLM, dict[str, Any]]:
    """A randomly initialised SpeechLM of a named shape (the no-TWIST baseline)."""
    torch.manual_seed(seed)
    model = SpeechLM(named_shape(shape, vocab_size=vocab.size, rope_theta=rope_theta))
    return model.eval(), {"kind": "random", "shape": shape, "seed": seed, "rope_theta": rope_theta}


def _from_slamkit(cfg: InitConfig) -> tuple[nn.Module, UnitVocab, dict[str, Any]]:
    """A slamkit checkpoint moved into our layout (continued training on slam pack data)."""
    from slamlm.model.checkpoint import load_checkpoint
    from slamlm.model.slamkit import to_slamlm_layout

    model, meta = load_checkpoint(cfg.text_lm)
    theirs = UnitVocab.from_dict(meta["vocab"])
    if theirs.n_units != cfg.units:
        raise ValueError(f"{cfg.text_lm}: a slamkit model over {theirs.n_units} units, but "
                         f"--units is {cfg.units}")
    model, vocab = to_slamlm_layout(model, theirs)
    if cfg.keep_layers:
        model = keep_first_layers(model, cfg.keep_layers)
    return model, vocab, {**meta["init"], "kind": "slamkit-converted",
                          "note": "<S> row copied to bos and eos (not exact; see FIDELITY.md)"}


def _read_identity(path: str) -> dict[str, Any]:
    p = Path(path)
    d = read_json(p, "units identity file does not exist")
    d = d.get("units", d) if isinstance(d, dict) else d  # a checkpoint config.json works too
    if not isinstance(d, dict) or "encoder" not in d:
        raise ValueError(f"{p}: expected a unit extractor identity with an 'encoder' key")
    return d


def run_init(cfg: InitConfig) -> Path:
    """Write the initial checkpoint folder ``cfg.out`` (skips when already done)."""
    out = Path(cfg.out)
    if (out / CONFIG).is_file() and (out / WEIGHTS).is_file() and not cfg.force:
        done = read_meta(out).get("init", {}).get("config")
        if done == to_dict(dataclasses.replace(cfg, force=False)):
            log.info("%s already initialised with this config; skipping", out)
            return out
        raise ValueError(f"{out} already holds a checkpoint made with another init config; "
                         "pass --force to replace it or choose another --out")
    vocab = UnitVocab(n_units=cfg.units)
    units = _read_identity(cfg.units_identity) if cfg.units_identity else {}
    if cfg.text_lm and is_slamkit_folder(cfg.text_lm):
        model, vocab, init = _from_slamkit(cfg)
    elif cfg.text_lm:
        model, init = twist_init(cfg.text_lm, vocab, cfg.embed_init, cfg.seed, cfg.rope_theta,
                                 cfg.gguf_file or None, cfg.keep_layers)
    else:
        model, init = random_init(cfg.shape, vocab, cfg.seed, cfg.rope_theta)
    init["config"] = to_dict(dataclasses.replace(cfg, force=False))
    meta = {"vocab": vocab.to_dict(), "units": units, "init": init}
    with atomic_dir(out) as tmp:
        write_checkpoint_files(model, meta, tmp)
        dump_config(cfg, tmp / "config.yaml")
    log.info("wrote %s (%s init, %.1fM params, vocab %d)", out, init["kind"],
             model.num_params() / 1e6, vocab.size)
    return out
