"""slamkit (github slp-rl/slamkit) checkpoints: read them as they are, write ours their way.

A slamkit checkpoint folder (``UnitLM.save_pretrained``, e.g. the released ``slprl/slam``):

- ``config.json``: a ``UnitLMConfig`` with ``model_type: speech_language_model``,
  ``base_model_name``, ``base_config`` (the wrapped transformers config, e.g. Qwen2),
  ``vocab_size`` (502), ``tie_word_embeddings``, ``twist_init``;
- ``model.safetensors``: the wrapped causal LM's weights under ``lm.``
  (``lm.model.embed_tokens.weight`` ...; a tied ``lm.lm_head.weight`` is left out);
- ``tokeniser_config.json`` (optional, ``UnitTokeniser.save_pretrained``): ``num_units``,
  ``bos_eos_token_id``, ``pad_token_id``. Without it: pad 0, ``<S>`` = 1, units from id 2.

**Decision: run in slamkit's vocabulary, do not convert.** slamkit has 502 rows (pad, ``<S>``
as bos *and* eos, 500 units); ours has 503 (pad, bos, eos, units). A lossless conversion to
ours is impossible: the one ``<S>`` row must become two rows (the bos input embedding and the
eos logit), and with a tied head the extra row adds its ``exp(logit)`` to every softmax
denominator, shifting every log-prob (no linear head row can carry zero mass). So a slamkit
model keeps its 502 rows and runs with ``UnitVocab.slamkit(500)`` (``unit_offset=2``,
``bos_id == eos_id == 1``); eval, generate and DPO read the vocabulary from the checkpoint's
meta, so their scores are exactly slamkit's.

Writing (``save_slamkit``): a model already in slamkit's layout is written as is (tied stays
tied). One of ours (503 rows) is written *untied*, its rows permuted, so it is lossless too:
row 1 (``<S>``) = our bos embedding + our eos head row, row ``2 + n_units`` = our eos embedding
+ our bos head row (slamkit's tokeniser never emits it; it only keeps the softmax the same). A
``slamlm.json`` sidecar records our vocabulary, so loading the folder back restores our
layout exactly.

Example:
    >>> # model, meta = load_checkpoint("path/to/slamkit_ckpt")   # or the hub id slprl/slam
    >>> # UnitVocab.from_dict(meta["vocab"]) == UnitVocab.slamkit(500)
    >>> # save_slamkit(model, meta, "out/slamkit")   # UnitLM.from_pretrained("out/slamkit")
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from slamlm.io import atomic_dir
from slamlm.model.build import build_model
from slamlm.model.config import SpeechLMConfig
from slamlm.model.files import (
    CONFIG,
    WEIGHTS,
    CheckpointError,
    load_state,
    read_json,
    state_for_saving,
)
from slamlm.vocab import UnitVocab

log = logging.getLogger(__name__)

MODEL_TYPE = "speech_language_model"
PREFIX = "lm."
TOKENISER, SIDECAR = "tokeniser_config.json", "slamlm.json"
ROW_MAP = "slamlm-v1"  # sidecar tag: rows were permuted from our layout (see module docstring)
# any hub id of the family: slamkit loads base_model_name's config, then base_config overrides it
DEFAULT_BASE = {"qwen2": "Qwen/Qwen2.5-0.5B", "llama": "HuggingFaceTB/SmolLM2-135M",
                "opt": "facebook/opt-125m", "gpt2": "openai-community/gpt2",
                "gpt_neox": "EleutherAI/pythia-70m"}
UNITS_HINT = ("slamkit checkpoints do not record their unit extractor; the released slprl/slam "
              "models use mHuBERT-25Hz (slprl/mhubert-base-25hz) layer 11 + the TWIST k-means "
              "500 (mhubert_base_25hz_cp_mls_cv_sp_fisher_L11_km500.bin)")


def is_slamkit(raw: dict[str, Any]) -> bool:
    """Whether a parsed ``config.json`` is slamkit's ``UnitLMConfig``."""
    return isinstance(raw, dict) and raw.get("model_type") == MODEL_TYPE


EMBED_NAMES = ("embed_tokens.weight", "wte.weight", "embed_in.weight", "word_embeddings.weight")


def _embed_rows(wpath: Path) -> int:
    """Rows of the ``lm.`` input embedding in a safetensors file (reads the header only)."""
    from safetensors import safe_open

    with safe_open(str(wpath), "pt") as f:
        names = [k for k in f.keys() if k.startswith(PREFIX) and k.endswith(EMBED_NAMES)]
        if not names:
            raise CheckpointError(f"{wpath}: no 'lm.' input embedding ({', '.join(EMBED_NAMES)})"
                                  ": not a slamkit UnitLM")
        return int(f.get_slice(names[0]).get_shape()[0])


def _vocab(folder: Path, n_rows: int) -> UnitVocab:
    """slamkit's vocabulary: from ``tokeniser_config.json`` when present, else the default."""
    tok = read_json(folder / TOKENISER, "", CheckpointError) if (folder / TOKENISER).is_file() else {}
    s, pad = int(tok.get("bos_eos_token_id", 1)), int(tok.get("pad_token_id", 0))
    offset = max(s, pad) + 1
    n_units = int(tok.get("num_units", n_rows - offset))
    if n_units < 1 or offset + n_units > n_rows:
        raise CheckpointError(
            f"{folder}: {n_units} units from id {offset} need {offset + n_units} embedding rows, "
            f"the weights have {n_rows} ({TOKENISER} and model.safetensors disagree)")
    return UnitVocab(n_units=n_units, pad_id=pad, bos_id=s, eos_id=s, unit_offset=offset)


def _hf_config(raw: dict[str, Any], n_rows: int, where: Path) -> Any:
    """The wrapped transformers config (``base_config``), its vocab set to the weights' rows."""
    from transformers import CONFIG_MAPPING

    base = dict(raw.get("base_config") or {})
    mtype = base.pop("model_type", None)
    if mtype not in CONFIG_MAPPING:
        raise CheckpointError(f"{where}: base_config.model_type {mtype!r} is not a transformers "
                              "model type (slamkit config.json without a usable base_config)")
    for k in ("torch_dtype", "dtype", "transformers_version", "_name_or_path", "architectures"):
        base.pop(k, None)
    base.update(vocab_size=n_rows, tie_word_embeddings=bool(raw.get(
        "tie_word_embeddings", base.get("tie_word_embeddings", True))))
    return CONFIG_MAPPING[mtype].from_dict(base)


def _speechlm_config(hf_cfg: Any, where: Path) -> SpeechLMConfig:
    from slamlm.model.generic import config_from_generic
    from slamlm.model.hf import NATIVE_TYPES, HFImportError, config_from_hf

    if hf_cfg.model_type in NATIVE_TYPES:
        try:
            return config_from_hf(hf_cfg, str(where))
        except HFImportError as e:
            log.warning("%s; using the generic HF path", e)
    return config_from_generic(hf_cfg)


def slamkit_meta(folder: Path, raw: dict[str, Any]) -> dict[str, Any]:
    """Our checkpoint meta (model, vocab, units, init) for a slamkit folder (no weights read)."""
    cfg_path, wpath = folder / CONFIG, folder / WEIGHTS
    if not wpath.is_file():
        raise CheckpointError(f"{wpath}: missing weights file (slamkit checkpoints keep the "
                              "weights in model.safetensors)")
    n_rows = _embed_rows(wpath)
    if int(raw.get("vocab_size", n_rows)) != n_rows:
        raise CheckpointError(
            f"{cfg_path}: vocab_size {raw['vocab_size']} but {wpath.name} has {n_rows} embedding "
            "rows: config.json and the weights come from different models")
    side = _sidecar(folder)
    cfg = _speechlm_config(_hf_config(raw, n_rows, cfg_path), cfg_path)
    meta = {"model": cfg.to_dict(), "vocab": _vocab(folder, n_rows).to_dict(),
            "units": side.get("units") or {},
            "init": {"kind": "slamkit", "source": str(folder),
                     "base_model_name": raw.get("base_model_name", ""),
                     **({} if side.get("units") else {"units_hint": UNITS_HINT})}}
    if side.get("row_map") == ROW_MAP:
        meta.update(model=side["model"], vocab=side["vocab"], init=side.get("init") or meta["init"])
    return meta


def _sidecar(folder: Path) -> dict[str, Any]:
    """``slamlm.json`` written by :func:`save_slamkit` (``{}`` for slamkit's own folders)."""
    return read_json(folder / SIDECAR, "", CheckpointError) if (folder / SIDECAR).is_file() else {}


def _from_ours(vocab: UnitVocab, n_rows: int) -> tuple[list[int], list[int]]:
    """(embedding rows, head rows) of our model, in slamkit's row order (see module doc).

    Both are permutations of our ``n_rows`` rows (rows past ``vocab.size`` stay last).
    """
    units = list(range(vocab.unit_offset, vocab.unit_offset + vocab.n_units))
    rest = list(range(vocab.size, n_rows))
    embed = [vocab.pad_id, vocab.bos_id, *units, vocab.eos_id, *rest]
    head = [vocab.pad_id, vocab.eos_id, *units, vocab.bos_id, *rest]
    return embed, head


def _to_ours(vocab: UnitVocab, n_rows: int) -> tuple[list[int], list[int]]:
    """Inverse of :func:`_from_ours`: slamkit row index of each of our rows."""
    embed, head = _from_ours(vocab, n_rows)
    inv_e, inv_h = [0] * n_rows, [0] * n_rows
    for i, (e, h) in enumerate(zip(embed, head, strict=True)):
        inv_e[e], inv_h[h] = i, i
    return inv_e, inv_h


def _embed_head_keys(model: nn.Module) -> tuple[str, str]:
    """State-dict names of the input embedding and the LM head (native or generic)."""
    if model.config.family != "hf":
        return "model.embed_tokens.weight", "lm_head.weight"
    emb, head = model.hf.get_input_embeddings(), model.hf.get_output_embeddings()
    names = {id(m): n for n, m in model.named_modules(remove_duplicate=False)}
    return f"{names[id(emb)]}.weight", f"{names[id(head)]}.weight"


def load_slamkit(folder: Path, raw: dict[str, Any], device: Any = "cpu",
                 dtype: torch.dtype | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """``(model, meta)`` of a slamkit folder (rows as stored, or ours when the sidecar says so)."""
    from safetensors.torch import load_file

    meta = slamkit_meta(folder, raw)
    wpath = folder / WEIGHTS
    state = {k[len(PREFIX):]: v for k, v in load_file(str(wpath)).items() if k.startswith(PREFIX)}
    cfg = SpeechLMConfig.from_dict(meta["model"])
    model = _build(cfg)
    ek, hk = _embed_head_keys(model)
    if cfg.family == "hf":
        state = {f"hf.{k}": v for k, v in state.items()}
    if _sidecar(folder).get("row_map") == ROW_MAP:
        state = _unpermute(state, cfg, UnitVocab.from_dict(meta["vocab"]), (ek, hk), wpath)
    if cfg.tie_embeddings:
        state.pop(hk, None)
    load_state(model, state, wpath)
    model.to(device=device, dtype=dtype)
    return model.eval(), meta


def _build(cfg: SpeechLMConfig) -> nn.Module:
    if cfg.family == "hf":
        return build_model(cfg)
    with torch.device("meta"):
        return build_model(cfg)


def _unpermute(state: dict[str, Tensor], cfg: SpeechLMConfig, vocab: UnitVocab,
               keys: tuple[str, str], where: Path) -> dict[str, Tensor]:
    """Our rows back from a folder written by :func:`save_slamkit` from one of our models."""
    ek, hk = keys
    if ek not in state or hk not in state:
        raise CheckpointError(f"{where}: {SIDECAR} says slamlm row order, but {ek}/{hk} are missing")
    inv_e, inv_h = _to_ours(vocab, cfg.vocab_size)
    emb, head = state[ek][inv_e], state[hk][inv_h]
    if cfg.tie_embeddings and not torch.equal(emb, head):
        raise CheckpointError(f"{where}: embedding and head rows no longer match {SIDECAR} (the "
                              f"weights were changed after export); delete {SIDECAR} to load "
                              "the folder in slamkit's layout")
    return {**state, ek: emb, hk: head}


def _base_config(model: nn.Module, vocab_size: int, tied: bool, dtype: torch.dtype,
                 vocab: UnitVocab) -> dict[str, Any]:
    """The wrapped transformers config dict slamkit keeps in ``base_config``."""
    from slamlm.model.hf import hf_config_for

    cfg = model.hf.config if model.config.family == "hf" else hf_config_for(model.config)
    d = cfg.to_dict()
    d.update(vocab_size=vocab_size, tie_word_embeddings=tied, pad_token_id=vocab.pad_id,
             bos_token_id=vocab.bos_id, eos_token_id=vocab.eos_id,
             torch_dtype=str(dtype).removeprefix("torch."))
    d.pop("dtype", None)
    if "rope_parameters" in d and "rope_theta" in (d["rope_parameters"] or {}):
        d["rope_theta"] = d["rope_parameters"]["rope_theta"]  # the transformers 4.x field
    return d


def _slamkit_state(model: nn.Module, vocab: UnitVocab, remap: bool) -> dict[str, Tensor]:
    """Weights under ``lm.``, rows permuted into slamkit's order when ``remap``."""
    state = state_for_saving(model)
    ek, hk = _embed_head_keys(model)
    if remap:
        e_rows, h_rows = _from_ours(vocab, model.config.vocab_size)
        head = dict(model.named_parameters(remove_duplicate=False))[hk].detach().cpu()
        state[ek], state[hk] = state[ek][e_rows].contiguous(), head[h_rows].contiguous()
    strip = "hf." if model.config.family == "hf" else ""
    return {PREFIX + k.removeprefix(strip): v for k, v in state.items()}


def _base_model_name(meta: dict[str, Any], model: nn.Module) -> str:
    """A hub id whose config slamkit can fetch: of the *same* model type (its base_config
    then overrides every field). The TWIST source when it is one, else a canonical one."""
    init = meta.get("init") or {}
    mtype = model.config.hf_model_type or model.config.family
    if init.get("base_model_name"):
        return str(init["base_model_name"])
    src = str(init.get("source", ""))
    same_type = init.get("source_model_type") == mtype and init.get("kind") == "twist"
    if same_type and src.count("/") == 1 and not Path(src).exists() and not src.endswith(".gguf"):
        return src
    return DEFAULT_BASE.get(mtype, "")


def _write_json(path: Path, obj: Any) -> None:
    """JSON as transformers writes configs (indent 2, sorted keys)."""
    path.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def save_slamkit(model: nn.Module, meta: dict[str, Any], out: str | Path,
                 extra_files: dict[str, str] | None = None) -> Path:
    """Write ``model`` as a folder slamkit's ``UnitLM.from_pretrained`` reads. Atomic.

    ``extra_files`` (name -> text, e.g. a ``README.md`` model card) are written beside it.

    Example:
        >>> # save_slamkit(*load_checkpoint("run/ckpt/step_00017625"), "out/slamkit")
    """
    from safetensors.torch import save_file

    vocab = (UnitVocab.from_dict(meta["vocab"]) if meta.get("vocab")
             else UnitVocab(n_units=model.config.vocab_size - 3))
    if vocab.size > model.config.vocab_size:
        raise ValueError(f"vocabulary of {vocab.size} tokens does not fit the model's "
                         f"{model.config.vocab_size} rows")
    if vocab.n_text:
        raise ValueError("interleaved (speech + text) models have no slamkit UnitLM format")
    remap = not (vocab.bos_id == vocab.eos_id and vocab.unit_offset == 2 and vocab.pad_id == 0)
    rows = model.config.vocab_size
    tied = bool(model.config.tie_embeddings) and not remap
    dtype = next(model.parameters()).dtype
    base_name = _base_model_name(meta, model)
    base = _base_config(model, rows, tied, dtype, UnitVocab.slamkit(vocab.n_units))
    config = {"architectures": ["UnitLM"], "base_config": base, "base_model_name": base_name,
              "max_position_embeddings": base.get("max_position_embeddings"),
              "model_type": MODEL_TYPE, "tie_word_embeddings": tied,
              "torch_dtype": base["torch_dtype"], "transformers_version": "4.48.1",
              "trust_remote_code": None, "twist_init": True, "use_cache": True,
              "use_safetensors": None, "vocab_size": rows}
    tok = {"dedup": True, "bos_eos_token_id": 1, "pad_token_id": 0,
           "num_units": vocab.n_units, "load_fe": False}
    side = {k: meta.get(k) for k in ("units", "init", "train") if meta.get(k)}
    if remap:
        side.update(row_map=ROW_MAP, model=model.config.to_dict(), vocab=vocab.to_dict())
    with atomic_dir(Path(out)) as tmp:
        save_file(_slamkit_state(model, vocab, remap), str(tmp / WEIGHTS), metadata={"format": "pt"})
        _write_json(tmp / CONFIG, config)
        _write_json(tmp / TOKENISER, tok)
        _write_json(tmp / SIDECAR, side)
        for name, text in (extra_files or {}).items():
            (tmp / name).write_text(text)
    log.info("wrote slamkit folder %s (%d rows%s)", out, rows, ", our rows remapped" if remap else "")
    return Path(out)


def is_slamkit_folder(source: str | Path) -> bool:
    """Whether ``source`` is a local folder holding a slamkit ``config.json``."""
    path = Path(source) / CONFIG
    if not path.is_file():
        return False
    try:
        return is_slamkit(json.loads(path.read_text()))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False


def to_slamlm_layout(model: nn.Module, vocab: UnitVocab) -> tuple[nn.Module, UnitVocab]:
    """A native slamkit-layout model moved into our layout (pad, bos, eos, units), for
    *continued training* on ``slam pack`` data (``slam init <slamkit folder>``).

    Not exact, by design of the two layouts: ``<S>`` becomes two rows (bos input, eos
    output), so its logit is counted twice in the softmax and every log-prob shifts by
    ``log(1 + p(<S>))`` until training adapts. Score released models with
    ``load_checkpoint`` instead (exact).

    Example:
        >>> # ours, v = to_slamlm_layout(*load_checkpoint("slam_ckpt")[:1], UnitVocab.slamkit())
    """
    from slamlm.model.transformer import SpeechLM

    if not isinstance(model, SpeechLM):
        raise ValueError("only native (Llama/Qwen2-family) slamkit models can change layout")
    ours = UnitVocab(n_units=vocab.n_units)
    units = list(range(vocab.unit_offset, vocab.unit_offset + vocab.n_units))
    rows = [vocab.pad_id, vocab.bos_id, vocab.eos_id, *units]
    cfg = dataclasses.replace(model.config, vocab_size=ours.size)
    with torch.device("meta"):
        new = SpeechLM(cfg)
    state = dict(model.state_dict())
    for key in ("model.embed_tokens.weight", "lm_head.weight"):
        state[key] = state[key][rows].clone()
    if cfg.tie_embeddings:
        state.pop("lm_head.weight")
    new.load_state_dict(state, strict=not cfg.tie_embeddings, assign=True)
    new.tie_weights()
    return new.eval(), ours
