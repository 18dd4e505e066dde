"""Architecture config of a SpeechLM (frozen) and the named shapes used for random init.

Example:
    >>> cfg = named_shape("slam-358m")
    >>> cfg.hidden_size, cfg.n_layers, cfg.vocab_size, cfg.head_dim
    (896, 24, 503, 64)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from slamlm.config import ConfigError, from_dict, to_dict

Family = Literal["llama", "qwen2", "hf"]
AttnImpl = Literal["sdpa", "flex"]


@dataclass(frozen=True)
class SpeechLMConfig:
    """Decoder shape. ``family`` "llama"/"qwen2" run natively; "hf" wraps a transformers model.

    ``head_dim`` 0 means ``hidden_size // n_heads``. ``hf_model_type`` / ``hf_config`` are
    only used by the generic HF path (family "hf").
    """

    vocab_size: int = 503
    hidden_size: int = 896
    n_layers: int = 24
    n_heads: int = 14
    n_kv_heads: int = 2
    intermediate_size: int = 4864
    rope_theta: float = 10000.0
    qkv_bias: bool = True
    tie_embeddings: bool = True
    rms_norm_eps: float = 1e-6
    max_seq_len: int = 1024
    family: Family = "qwen2"
    head_dim: int = 0
    attn_impl: AttnImpl = "sdpa"
    initializer_range: float = 0.02
    hf_model_type: str = ""
    hf_config: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.family == "hf":
            return
        if self.n_heads % self.n_kv_heads:
            raise ConfigError(
                f"n_heads={self.n_heads} must be a multiple of n_kv_heads={self.n_kv_heads}"
            )
        if not self.head_dim and self.hidden_size % self.n_heads:
            raise ConfigError(
                f"hidden_size={self.hidden_size} is not divisible by n_heads={self.n_heads}; "
                "set head_dim explicitly"
            )
        if self.dim_head % 2:
            raise ConfigError(f"head_dim={self.dim_head} must be even for RoPE")

    @property
    def dim_head(self) -> int:
        """Per-head width (``head_dim`` or ``hidden_size // n_heads``)."""
        return self.head_dim or self.hidden_size // self.n_heads

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SpeechLMConfig:
        return from_dict(cls, d)


# name -> (hidden, layers, heads, kv heads, mlp, qkv bias, tied)
_SHAPES: dict[str, tuple[int, int, int, int, int, bool, bool]] = {
    "tiny": (64, 2, 4, 2, 176, True, True),
    "small": (256, 6, 4, 2, 704, True, True),
    "slam-135m": (576, 30, 9, 3, 1536, False, True),  # SmolLM2-135M shape
    "slam-358m": (896, 24, 14, 2, 4864, True, True),  # Qwen2.5-0.5B shape
    "slam-1b": (1536, 28, 12, 2, 8960, True, True),  # Qwen2.5-1.5B shape
}


def shape_names() -> list[str]:
    return list(_SHAPES)


def named_shape(name: str, vocab_size: int = 503, **overrides: Any) -> SpeechLMConfig:
    """A SpeechLMConfig for a named shape (``tiny``, ``small``, ``slam-358m``...).

    Example:
        >>> named_shape("tiny", vocab_size=13).n_layers
        2
    """
    if name not in _SHAPES:
        raise ConfigError(f"unknown model shape {name!r}; known shapes: {', '.join(_SHAPES)}")
    h, n_layers, heads, kv, mlp, bias, tied = _SHAPES[name]
    base = dict(
        vocab_size=vocab_size, hidden_size=h, n_layers=n_layers, n_heads=heads, n_kv_heads=kv,
        intermediate_size=mlp, qkv_bias=bias, tie_embeddings=tied,
        family="qwen2" if bias else "llama",
    )
    base.update(overrides)
    return SpeechLMConfig(**base)
