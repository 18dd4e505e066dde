"""Import transformers Llama/Qwen2-family checkpoints into a SpeechLM and export back.

Our module names equal the transformers ones, so weights map 1:1; what needs care is the
config (rope theta under ``rope_parameters`` in transformers 5, GQA, head_dim, QKV bias, tied
head). Sources: a folder, a hub id (``from_pretrained``; offline unless cached) or a GGUF file
(``gguf_file=``, dequantised by transformers).

Example:
    >>> # model = import_hf("HuggingFaceTB/SmolLM2-135M")            # folder or hub id
    >>> # model = import_hf("/path/SmolLM2-135M-Instruct.Q4_1.gguf")  # GGUF file
    >>> # export_hf(model, "out/hf")  # AutoModelForCausalLM.from_pretrained("out/hf") works
"""

from __future__ import annotations

import contextlib
import functools
import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from slamlm.io import atomic_dir, atomic_write_json
from slamlm.model.config import SpeechLMConfig
from slamlm.model.files import state_for_saving
from slamlm.model.transformer import SpeechLM

log = logging.getLogger(__name__)

NATIVE_TYPES = {"llama": "llama", "qwen2": "qwen2", "mobilellm": "llama", "smollm": "llama"}


class HFImportError(ValueError):
    """A transformers checkpoint that the native SpeechLM cannot represent."""


def _rope_theta(hf_cfg: Any, where: str) -> float:
    params = getattr(hf_cfg, "rope_parameters", None) or {}
    scaling = getattr(hf_cfg, "rope_scaling", None) or {}
    rope_type = params.get("rope_type") or scaling.get("rope_type") or scaling.get("type")
    if rope_type not in (None, "default"):
        raise HFImportError(
            f"{where}: RoPE type {rope_type!r} is not supported natively; "
            "use the generic HF path (family 'hf')"
        )
    theta = params.get("rope_theta", getattr(hf_cfg, "rope_theta", None))
    return float(theta if theta is not None else 10000.0)


def config_from_hf(hf_cfg: Any, where: str = "checkpoint") -> SpeechLMConfig:
    """transformers config (Llama/Qwen2/MobileLLM/SmolLM2) -> SpeechLMConfig."""
    mtype = getattr(hf_cfg, "model_type", "")
    if mtype not in NATIVE_TYPES:
        raise HFImportError(
            f"{where}: model_type {mtype!r} is not Llama/Qwen2-family; "
            f"native types: {sorted(NATIVE_TYPES)} (others run through slamlm.model.generic)"
        )
    act = getattr(hf_cfg, "hidden_act", "silu")
    if act != "silu":
        raise HFImportError(f"{where}: hidden_act {act!r} is not SwiGLU/silu")
    if getattr(hf_cfg, "attention_bias", False) or getattr(hf_cfg, "mlp_bias", False):
        raise HFImportError(f"{where}: Llama attention_bias/mlp_bias (o_proj/MLP biases) unsupported")
    heads = hf_cfg.num_attention_heads
    head_dim = getattr(hf_cfg, "head_dim", None) or hf_cfg.hidden_size // heads
    return SpeechLMConfig(
        vocab_size=hf_cfg.vocab_size, hidden_size=hf_cfg.hidden_size,
        n_layers=hf_cfg.num_hidden_layers, n_heads=heads,
        n_kv_heads=getattr(hf_cfg, "num_key_value_heads", None) or heads,
        intermediate_size=hf_cfg.intermediate_size, rope_theta=_rope_theta(hf_cfg, where),
        qkv_bias=NATIVE_TYPES[mtype] == "qwen2",
        tie_embeddings=bool(getattr(hf_cfg, "tie_word_embeddings", False)),
        rms_norm_eps=float(hf_cfg.rms_norm_eps),
        max_seq_len=int(getattr(hf_cfg, "max_position_embeddings", 2048) or 2048),
        family=NATIVE_TYPES[mtype],
        head_dim=0 if head_dim * heads == hf_cfg.hidden_size else head_dim,
        initializer_range=float(getattr(hf_cfg, "initializer_range", 0.02)),
    )


@contextlib.contextmanager
def _faster_gguf_load():
    """transformers parses the GGUF file twice (config, then tensors) and rebuilds
    ``gguf.get_tensor_name_map(arch, n)`` once per module (~400 times for 30 layers): most of
    a GGUF load. Memoise both (read-only objects) while loading; restored afterwards."""
    try:
        import gguf
    except ImportError:
        yield
        return
    name_map, reader = gguf.get_tensor_name_map, gguf.GGUFReader
    readers: dict[tuple[str, str], Any] = {}

    def cached_reader(path, mode="r"):
        key = (str(path), mode)
        if key not in readers:
            readers[key] = reader(path, mode)
        return readers[key]

    gguf.get_tensor_name_map = functools.lru_cache(maxsize=8)(name_map)
    gguf.GGUFReader = cached_reader
    try:
        yield
    finally:
        gguf.get_tensor_name_map, gguf.GGUFReader = name_map, reader


def load_hf_model(source: str | Path, gguf_file: str | None = None,
                  dtype: torch.dtype = torch.float32) -> nn.Module:
    """``AutoModelForCausalLM.from_pretrained`` for a folder, hub id or ``*.gguf`` path."""
    from transformers import AutoModelForCausalLM

    source = Path(source) if Path(source).exists() else source
    if isinstance(source, Path) and source.suffix == ".gguf" and gguf_file is None:
        source, gguf_file = source.parent, source.name
    kwargs: dict[str, Any] = {"dtype": dtype}
    if gguf_file:
        kwargs["gguf_file"] = gguf_file
    try:
        with _faster_gguf_load() if gguf_file else contextlib.nullcontext():
            return AutoModelForCausalLM.from_pretrained(str(source), **kwargs)
    except OSError as e:
        raise FileNotFoundError(
            f"{source}{'/' + gguf_file if gguf_file else ''}: cannot load a transformers causal "
            f"LM ({e}); pass a local folder with config.json + weights, a GGUF file, or a hub "
            "id that is cached (HF_HUB_OFFLINE may be set)"
        ) from e


def import_hf(source: str | Path | nn.Module, gguf_file: str | None = None,
              dtype: torch.dtype = torch.float32) -> SpeechLM:
    """A native SpeechLM holding the weights of an HF Llama/Qwen2-family causal LM.

    ``source``: a folder, hub id, ``.gguf`` path, or an already loaded transformers model.
    """
    hf = source if isinstance(source, nn.Module) else load_hf_model(source, gguf_file, dtype)
    where = str(getattr(hf, "name_or_path", "") or source)
    cfg = config_from_hf(hf.config, where)
    with torch.device("meta"):
        model = SpeechLM(cfg)
    state = {k: v for k, v in hf.state_dict().items() if "rotary_emb" not in k}
    if cfg.tie_embeddings:
        state.pop("lm_head.weight", None)
    own = set(model.state_dict()) - model.tied_keys()
    missing, unexpected = sorted(own - set(state)), sorted(set(state) - own)
    if missing or unexpected:
        raise HFImportError(
            f"{where}: weight names do not map (missing {missing[:4]}, unexpected {unexpected[:4]})"
        )
    model.load_state_dict({k: v.to(dtype).clone() for k, v in state.items()},
                          strict=False, assign=True)
    model.tie_weights()
    return model.eval()


def hf_config_for(cfg: SpeechLMConfig, vocab: Any = None, dtype: torch.dtype = torch.float32):
    """The transformers config that reproduces ``cfg``: Qwen2 with QKV bias, else Llama."""
    from transformers import LlamaConfig, Qwen2Config

    common: dict[str, Any] = dict(
        vocab_size=cfg.vocab_size, hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size, num_hidden_layers=cfg.n_layers,
        num_attention_heads=cfg.n_heads, num_key_value_heads=cfg.n_kv_heads,
        head_dim=cfg.dim_head, rope_theta=cfg.rope_theta, rms_norm_eps=cfg.rms_norm_eps,
        tie_word_embeddings=cfg.tie_embeddings, max_position_embeddings=cfg.max_seq_len,
        initializer_range=cfg.initializer_range, hidden_act="silu", attention_dropout=0.0,
    )
    if vocab is not None:
        common.update(pad_token_id=vocab.pad_id, bos_token_id=vocab.bos_id,
                      eos_token_id=vocab.eos_id)
    if cfg.qkv_bias:
        hf_cfg = Qwen2Config(use_sliding_window=False, **common)
    else:
        hf_cfg = LlamaConfig(attention_bias=False, mlp_bias=False, **common)
    hf_cfg.architectures = [type(hf_cfg).__name__.replace("Config", "ForCausalLM")]
    hf_cfg.dtype = dtype
    return hf_cfg


def export_hf(model: nn.Module, folder: str | Path, vocab: Any = None,
              extra_files: dict[str, str] | None = None) -> Path:
    """Write ``model`` as an HF folder (config.json + model.safetensors) loadable by
    ``AutoModelForCausalLM.from_pretrained`` with the same logits. Atomic.

    ``extra_files`` (name -> text, e.g. a ``README.md`` model card) are written beside them.
    """
    from safetensors.torch import save_file


    folder = Path(folder)
    if getattr(model.config, "family", "") == "hf":
        with atomic_dir(folder) as tmp:
            model.hf.save_pretrained(tmp)
            _write_texts(tmp, extra_files)
        return folder
    dtype = next(model.parameters()).dtype
    hf_cfg = hf_config_for(model.config, vocab, dtype)
    with atomic_dir(folder) as tmp:
        hf_cfg.save_pretrained(tmp)
        save_file(state_for_saving(model), str(tmp / "model.safetensors"),
                  metadata={"format": "pt"})
        if vocab is not None:
            atomic_write_json(tmp / "slamlm_vocab.json", vocab.to_dict())
        _write_texts(tmp, extra_files)
    log.info("exported %s as %s", folder, hf_cfg.architectures[0])
    return folder


def _write_texts(folder: Path, files: dict[str, str] | None) -> None:
    for name, text in (files or {}).items():
        (folder / name).write_text(text)
