"""Native Llama/Qwen2-family decoder: RMSNorm, RoPE, SwiGLU, GQA, optional QKV bias, tied head.

Module names follow transformers (``model.layers.0.self_attn.q_proj``...), so an HF
Llama/Qwen2 state dict maps 1:1. Forward has no data-dependent Python branching and no
``.item()``: it compiles with ``torch.compile``. Documents packed in one row are kept apart
with ``doc_ids`` (SDPA boolean mask on CPU, FlexAttention BlockMask on GPU).

Example:
    >>> import torch
    >>> from slamlm.model.config import named_shape
    >>> m = SpeechLM(named_shape("tiny", vocab_size=13))
    >>> ids = torch.randint(0, 13, (2, 8))
    >>> m(ids, doc_ids=torch.tensor([[0] * 5 + [1] * 3] * 2)).shape
    torch.Size([2, 8, 13])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from slamlm.model.config import SpeechLMConfig
from slamlm.model.masks import AttnMask, attend, build_mask_and_positions


class RMSNorm(nn.Module):
    """RMSNorm computed in fp32 (as transformers does), weight applied in the input dtype."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        x32 = x.float()
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x32.to(x.dtype)


def rope_cos_sin(positions: Tensor, inv_freq: Tensor, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """positions (B, T) -> cos, sin (B, 1, T, head_dim), computed in fp32."""
    freqs = positions[..., None].float() * inv_freq.float()  # (B, T, hd/2)
    emb = torch.cat([freqs, freqs], dim=-1)[:, None]  # (B, 1, T, hd)
    return emb.cos().to(dtype), emb.sin().to(dtype)


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate-half RoPE (the transformers Llama convention). x: (B, H, T, hd)."""
    x1, x2 = x.chunk(2, dim=-1)
    return x * cos + torch.cat([-x2, x1], dim=-1) * sin


class Attention(nn.Module):
    def __init__(self, cfg: SpeechLMConfig, layer_idx: int):
        super().__init__()
        self.layer_idx = layer_idx
        self.n_heads, self.n_kv, self.hd = cfg.n_heads, cfg.n_kv_heads, cfg.dim_head
        h = cfg.hidden_size
        self.q_proj = nn.Linear(h, self.n_heads * self.hd, bias=cfg.qkv_bias)
        self.k_proj = nn.Linear(h, self.n_kv * self.hd, bias=cfg.qkv_bias)
        self.v_proj = nn.Linear(h, self.n_kv * self.hd, bias=cfg.qkv_bias)
        self.o_proj = nn.Linear(self.n_heads * self.hd, h, bias=False)

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor, mask: AttnMask, cache=None) -> Tensor:
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.n_heads, self.hd).transpose(1, 2)  # (B, H, T, hd)
        k = self.k_proj(x).view(B, T, self.n_kv, self.hd).transpose(1, 2)  # (B, Hkv, T, hd)
        v = self.v_proj(x).view(B, T, self.n_kv, self.hd).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if cache is not None:
            k, v = cache.update(self.layer_idx, k, v)  # (B, Hkv, T_cache + T, hd)
        y = attend(q, k, v, mask, gqa=self.n_kv != self.n_heads)  # (B, H, T, hd)
        return self.o_proj(y.transpose(1, 2).reshape(B, T, self.n_heads * self.hd))


class MLP(nn.Module):
    """SwiGLU: down(silu(gate(x)) * up(x))."""

    def __init__(self, cfg: SpeechLMConfig):
        super().__init__()
        self.gate_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.up_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.down_proj = nn.Linear(cfg.intermediate_size, cfg.hidden_size, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Block(nn.Module):
    def __init__(self, cfg: SpeechLMConfig, layer_idx: int):
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.self_attn = Attention(cfg, layer_idx)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.mlp = MLP(cfg)

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor, mask: AttnMask, cache=None) -> Tensor:
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask, cache)
        return x + self.mlp(self.post_attention_layernorm(x))


class Decoder(nn.Module):
    """Embeddings + blocks + final norm (``model.*`` in transformers naming)."""

    def __init__(self, cfg: SpeechLMConfig):
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList(Block(cfg, i) for i in range(cfg.n_layers))
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)


class SpeechLM(nn.Module):
    """A decoder-only LM over unit tokens. ``forward`` returns float logits (B, T, V)."""

    def __init__(self, config: SpeechLMConfig):
        super().__init__()
        if config.family == "hf":
            raise ValueError("family 'hf' models are built with slamlm.model.generic.GenericSpeechLM")
        self.config = config
        self.attn_impl = config.attn_impl
        self.model = Decoder(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.reset_parameters()

    def inv_freq(self, device: torch.device) -> Tensor:
        """RoPE inverse frequencies in fp32 (recomputed per call, so dtype casts never touch them)."""
        hd, theta = self.config.dim_head, self.config.rope_theta
        return 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=torch.float32, device=device) / hd))

    def tie_weights(self) -> None:
        if self.config.tie_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight

    def tied_keys(self) -> set[str]:
        """State-dict keys that alias another weight (not stored in checkpoints)."""
        return {"lm_head.weight"} if self.config.tie_embeddings else set()

    def reset_parameters(self) -> None:
        """Normal(0, initializer_range) weights, zero biases, unit norms; re-ties the head."""
        std = self.config.initializer_range
        for mod in self.modules():
            if isinstance(mod, (nn.Linear, nn.Embedding)):
                nn.init.normal_(mod.weight, mean=0.0, std=std)
                if getattr(mod, "bias", None) is not None:
                    nn.init.zeros_(mod.bias)
            elif isinstance(mod, RMSNorm):
                nn.init.ones_(mod.weight)
        self.tie_weights()

    def set_attn_impl(self, impl: str) -> None:
        """Switch the attention backend for doc-masked forwards: ``"sdpa"`` or ``"flex"``."""
        if impl not in ("sdpa", "flex"):
            raise ValueError(f"attn_impl must be 'sdpa' or 'flex', got {impl!r}")
        self.attn_impl = impl

    def forward(
        self,
        input_ids: Tensor,
        doc_ids: Tensor | None = None,
        cache=None,
        attention_mask: Tensor | None = None,
        targets: Tensor | None = None,
    ) -> Tensor:
        """input_ids (B, T) -> logits (B, T, V) float32. See module docstring.

        With ``targets`` (B, T) (``-100`` = ignored) it returns the *summed* next-token
        cross-entropy instead (0-d float32), so a compiled model fuses the loss into its graph
        and the fp32 logits are never materialised (training; same ops as outside).
        """
        mask, positions = build_mask_and_positions(
            input_ids, doc_ids, cache, attention_mask, self.attn_impl
        )
        x = self.model.embed_tokens(input_ids)  # (B, T, C)
        cos, sin = rope_cos_sin(positions, self.inv_freq(x.device), x.dtype)
        for layer in self.model.layers:
            x = layer(x, cos, sin, mask, cache)
        logits = self.lm_head(self.model.norm(x)).float()  # (B, T, V)
        if targets is not None:
            return F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-100,
                                   reduction="sum")
        if cache is not None:
            cache.advance(input_ids.shape[1])
        return logits

    def num_params(self, non_embedding: bool = False) -> int:
        """Unique parameters (a tied head counts once); optionally without the embedding."""
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            n -= self.model.embed_tokens.weight.numel()
        return n

    def flops_per_token(self, seq_len: int) -> float:
        """Training FLOPs per token: 6N + causal attention 6 * layers * heads * head_dim * T."""
        c = self.config
        return 6.0 * self.num_params() + 6.0 * c.n_layers * c.n_heads * c.dim_head * seq_len

    def extra_repr(self) -> str:
        return f"params={self.num_params() / 1e6:.1f}M, attn_impl={self.attn_impl}"


class KVCache:
    """Preallocated per-layer key/value tensors (B, n_kv_heads, max_len, head_dim), filled in place.

    Example:
        >>> import torch
        >>> from slamlm.model.config import named_shape
        >>> m = SpeechLM(named_shape("tiny", vocab_size=13))
        >>> c = KVCache.empty(m, batch_size=1, max_len=16)
        >>> _ = m(torch.tensor([[1, 5, 6]]), cache=c); c.length
        3
    """

    def __init__(self, k: list[Tensor], v: list[Tensor]):
        self.k, self.v = k, v
        self.length = 0

    @classmethod
    def empty(cls, model: nn.Module, batch_size: int, max_len: int,
              device: torch.device | str | None = None, dtype: torch.dtype | None = None):
        """An empty cache for ``model`` (a generic HF model gets its own cache type)."""
        if hasattr(model, "new_cache"):
            return model.new_cache(batch_size, max_len, device, dtype)
        cfg: SpeechLMConfig = model.config
        p = next(model.parameters())
        device, dtype = device or p.device, dtype or p.dtype
        shape = (batch_size, cfg.n_kv_heads, max_len, cfg.dim_head)
        k = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(cfg.n_layers)]
        v = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(cfg.n_layers)]
        return cls(k, v)

    @property
    def max_len(self) -> int:
        return self.k[0].shape[2]

    def update(self, layer: int, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Write new keys/values at ``length`` and return everything cached so far."""
        end = self.length + k.shape[2]
        if end > self.max_len:
            raise ValueError(f"KV cache full: {end} tokens > max_len {self.max_len}")
        self.k[layer][:, :, self.length:end] = k
        self.v[layer][:, :, self.length:end] = v
        return self.k[layer][:, :, :end], self.v[layer][:, :, :end]

    def advance(self, n: int) -> None:
        self.length += n

    def reset(self) -> None:
        self.length = 0

