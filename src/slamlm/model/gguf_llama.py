"""Llama-architecture GGUF files read straight into a native SpeechLM, only the blocks kept.

``transformers`` loads a GGUF file by parsing all of its metadata (the tokenizer's ~100k
strings, twice) and dequantising every tensor: ~17 s for SmolLM2-135M on 2 cores, of which a
2-block demo model needs a tenth. This reader skips the metadata it does not use, memory-maps
the tensors and dequantises (``gguf.quants``) only the embeddings, the final norm and the
first ``keep_layers`` blocks. The weights equal transformers' own, q/k rows included
(llama.cpp stores them permuted for its RoPE layout; :func:`unpermute_qk` undoes it).

Example:
    >>> # model, total = load_gguf_llama("SmolLM2-135M-Instruct.Q4_1.gguf", keep_layers=2)
    >>> # model.config.n_layers, total
    >>> # (2, 30)
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from slamlm.model.config import SpeechLMConfig
from slamlm.model.transformer import SpeechLM

_SCALAR = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
           10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9
_DEFAULT_ALIGNMENT = 32

# GGUF tensor names -> SpeechLM (= transformers Llama) parameter names
_BLOCK_NAMES = {
    "attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
    "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}
_TOP_NAMES = {"token_embd.weight": "model.embed_tokens.weight",
              "output_norm.weight": "model.norm.weight", "output.weight": "lm_head.weight"}


class GGUFError(ValueError):
    """A file that is not a GGUF file this reader understands."""


@dataclass
class GGUFTensor:
    shape: tuple[int, ...]  # row-major (numpy) order: the reverse of GGUF's ne[]
    qtype: int
    offset: int  # from the start of the data section


@dataclass
class GGUFFile:
    """Metadata (arrays of more than 64 values are left out) and tensor index of a file."""

    path: Path
    meta: dict[str, Any] = field(default_factory=dict)
    tensors: dict[str, GGUFTensor] = field(default_factory=dict)
    data_start: int = 0


class _Cursor:
    def __init__(self, buf: Any, where: str):
        self.buf, self.pos, self.where = buf, 0, where

    def take(self, fmt: str) -> Any:
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.buf):
            raise GGUFError(f"{self.where}: truncated GGUF header at byte {self.pos}")
        (value,) = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += size
        return value

    def string(self) -> str:
        n = self.take("<Q")
        if self.pos + n > len(self.buf):
            raise GGUFError(f"{self.where}: truncated GGUF string at byte {self.pos}")
        s = bytes(self.buf[self.pos:self.pos + n]).decode("utf-8", "replace")
        self.pos += n
        return s

    def value(self, vtype: int) -> Any:
        if vtype in _SCALAR:
            return self.take(_SCALAR[vtype])
        if vtype == _STRING:
            return self.string()
        if vtype != _ARRAY:
            raise GGUFError(f"{self.where}: unknown GGUF value type {vtype}")
        etype, count = self.take("<I"), self.take("<Q")
        if count > 64:  # tokenizer vocabularies and merges: skipped, only their size kept
            self._skip(etype, count)
            return {"array_of": etype, "count": count}
        return [self.value(etype) for _ in range(count)]

    def _skip(self, etype: int, count: int) -> None:
        if etype in _SCALAR:
            self.pos += struct.calcsize(_SCALAR[etype]) * count
        elif etype == _STRING:
            for _ in range(count):
                self.pos += 8 + struct.unpack_from("<Q", self.buf, self.pos)[0]
        else:
            for _ in range(count):
                self.value(etype)
        if self.pos > len(self.buf):
            raise GGUFError(f"{self.where}: truncated GGUF array")


def read_gguf(path: str | Path) -> GGUFFile:
    """The metadata and tensor index of a GGUF (v2/v3) file, without reading its tensors."""
    path = Path(path)
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        cur = _Cursor(buf, str(path))
        if bytes(buf[:4]) != b"GGUF":
            raise GGUFError(f"{path}: not a GGUF file (magic {bytes(buf[:4])!r})")
        cur.pos = 4
        version = cur.take("<I")
        if version not in (2, 3):
            raise GGUFError(f"{path}: GGUF version {version} (this reader knows 2 and 3)")
        n_tensors, n_kv = cur.take("<Q"), cur.take("<Q")
        out = GGUFFile(path)
        for _ in range(n_kv):
            key = cur.string()
            out.meta[key] = cur.value(cur.take("<I"))
        for _ in range(n_tensors):
            name = cur.string()
            dims = [cur.take("<Q") for _ in range(cur.take("<I"))]
            qtype, offset = cur.take("<I"), cur.take("<Q")
            out.tensors[name] = GGUFTensor(tuple(reversed(dims)), qtype, offset)
        align = int(out.meta.get("general.alignment", _DEFAULT_ALIGNMENT))
        out.data_start = -(-cur.pos // align) * align
    return out


def gguf_architecture(path: str | Path) -> str:
    """``general.architecture`` of a GGUF file ("" when it cannot be read)."""
    try:
        return str(read_gguf(path).meta.get("general.architecture", ""))
    except (OSError, GGUFError, ValueError):
        return ""


def _tensor(f: GGUFFile, buf: Any, name: str) -> np.ndarray:
    """One tensor of ``f``, dequantised to float32 (row-major, numpy shape)."""
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType
    from gguf.quants import dequantize

    t = f.tensors[name]
    qtype = GGMLQuantizationType(t.qtype)
    block, nbytes = GGML_QUANT_SIZES[qtype]
    n = int(np.prod(t.shape))
    size = n // block * nbytes
    start = f.data_start + t.offset
    if start + size > len(buf):
        raise GGUFError(f"{f.path}: tensor {name} runs past the end of the file")
    raw = np.frombuffer(buf, dtype=np.uint8, count=size, offset=start)
    if qtype == GGMLQuantizationType.F32:
        return raw.view(np.float32).reshape(t.shape).copy()
    rows = raw.reshape(n // t.shape[-1], t.shape[-1] // block * nbytes)
    return np.asarray(dequantize(rows, qtype), dtype=np.float32).reshape(t.shape)


def unpermute_qk(w: np.ndarray, heads: int) -> np.ndarray:
    """Rows of a q/k projection from llama.cpp's RoPE layout back to transformers' (each
    head's two interleaved halves made contiguous again).

    Example:
        >>> unpermute_qk(np.arange(4.0).reshape(4, 1), 1).ravel().tolist()
        [0.0, 2.0, 1.0, 3.0]
    """
    dim = w.shape[0] // heads // 2
    return w.reshape(heads, dim, 2, *w.shape[1:]).swapaxes(2, 1).reshape(w.shape)


def llama_config(f: GGUFFile, keep_layers: int = 0) -> SpeechLMConfig:
    """The SpeechLMConfig of a llama-architecture GGUF file (``keep_layers``: that many
    blocks; 0: all)."""
    m = f.meta
    arch = m.get("general.architecture")
    if arch != "llama":
        raise GGUFError(f"{f.path}: architecture {arch!r}; this reader loads 'llama' only")

    def need(key: str) -> Any:
        if f"llama.{key}" not in m:
            raise GGUFError(f"{f.path}: no llama.{key} in the GGUF metadata")
        return m[f"llama.{key}"]

    total, hidden, heads = int(need("block_count")), int(need("embedding_length")), \
        int(need("attention.head_count"))
    kv = int(m.get("llama.attention.head_count_kv", heads))
    head_dim = int(m.get("llama.attention.key_length", m.get("llama.rope.dimension_count", 0))
                   or hidden // heads)
    if "llama.rope.scaling.type" in m and m["llama.rope.scaling.type"] not in ("none", ""):
        raise GGUFError(f"{f.path}: RoPE scaling {m['llama.rope.scaling.type']!r} is not "
                        f"supported natively")
    if keep_layers and not 0 < keep_layers <= total:
        raise ValueError(f"keep_layers={keep_layers}: the model has {total} blocks (use "
                         f"1..{total})")
    return SpeechLMConfig(
        vocab_size=int(f.tensors["token_embd.weight"].shape[0]), hidden_size=hidden,
        n_layers=keep_layers or total, n_heads=heads, n_kv_heads=kv,
        intermediate_size=int(need("feed_forward_length")),
        rope_theta=float(m.get("llama.rope.freq_base", 10000.0)), qkv_bias=False,
        tie_embeddings="output.weight" not in f.tensors,
        rms_norm_eps=float(need("attention.layer_norm_rms_epsilon")),
        max_seq_len=int(m.get("llama.context_length", 2048)), family="llama",
        head_dim=0 if head_dim * heads == hidden else head_dim)


def load_gguf_llama(path: str | Path, keep_layers: int = 0,
                    dtype: torch.dtype = torch.float32) -> tuple[SpeechLM, int]:
    """A native SpeechLM with the weights of a llama-architecture GGUF file's embeddings,
    final norm and first ``keep_layers`` blocks (0: all); returns (model, blocks in the file).
    """
    f = read_gguf(path)
    cfg = llama_config(f, keep_layers)
    total = int(f.meta["llama.block_count"])
    names = [k for k in _TOP_NAMES if k in f.tensors]
    names += [f"blk.{i}.{part}.weight" for i in range(cfg.n_layers) for part in _BLOCK_NAMES]
    missing = [n for n in names if n not in f.tensors]
    if missing:
        raise GGUFError(f"{f.path}: tensors missing: {missing[:4]}")
    state: dict[str, torch.Tensor] = {}
    with open(f.path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        for name in names:
            w = _tensor(f, buf, name)
            if name.startswith("blk."):
                _, i, part, _ = name.split(".")
                if part in ("attn_q", "attn_k"):
                    w = unpermute_qk(w, cfg.n_heads if part == "attn_q" else cfg.n_kv_heads)
                key = f"model.layers.{i}.{_BLOCK_NAMES[part]}.weight"
            else:
                key = _TOP_NAMES[name]
            state[key] = torch.from_numpy(np.ascontiguousarray(w)).to(dtype)
    with torch.device("meta"):
        model = SpeechLM(cfg)
    own = set(model.state_dict()) - model.tied_keys()
    if own - set(state):
        raise GGUFError(f"{f.path}: no weights for {sorted(own - set(state))[:4]}")
    model.load_state_dict(state, strict=False, assign=True)
    model.tie_weights()
    return model.eval(), total
