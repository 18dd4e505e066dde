"""Generic HF path: any transformers causal LM (OPT, GPT-2, Pythia/GPTNeoX...) behind the
SpeechLM forward interface.

Limitations (slower than the native decoder; use it when the family is not Llama/Qwen2):
- ``doc_ids``: packed rows are split into their documents, which run as one right-padded
  batch (exact, but attention is computed per document and the split is a Python loop);
- ``cache``: a :class:`HFCache` wrapping transformers ``past_key_values`` (not preallocated);
- ``attention_mask`` (left padding): positions come from its cumulative sum when the model's
  forward takes ``position_ids`` (GPT-2, GPTNeoX, OPT in transformers 5), else the model's own;
- no FlexAttention, ``set_attn_impl`` is a no-op.

Example:
    >>> # model = GenericSpeechLM.from_pretrained("facebook/opt-125m")
    >>> # model(input_ids, doc_ids=doc_ids).shape == (B, T, vocab)
"""

from __future__ import annotations

import inspect
import logging
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from slamlm.model.config import SpeechLMConfig

log = logging.getLogger(__name__)


class HFCache:
    """KV cache of a generic model: transformers ``past_key_values`` plus ``length``."""

    def __init__(self, max_len: int):
        self.past: Any = None
        self.length = 0
        self.max_len = max_len

    def advance(self, n: int) -> None:
        self.length += n

    def reset(self) -> None:
        self.past, self.length = None, 0


def config_from_generic(hf_cfg: Any) -> SpeechLMConfig:
    """SpeechLMConfig(family="hf") holding the transformers config dict."""
    d = hf_cfg.to_dict()
    get = lambda *names, default=0: next(  # noqa: E731
        (d[n] for n in names if d.get(n) is not None), default)
    heads = int(get("num_attention_heads", "n_head", default=1))
    return SpeechLMConfig(
        vocab_size=int(d["vocab_size"]), hidden_size=int(get("hidden_size", "n_embd", "d_model")),
        n_layers=int(get("num_hidden_layers", "n_layer")), n_heads=heads, n_kv_heads=heads,
        intermediate_size=int(get("intermediate_size", "ffn_dim", "n_inner", default=0)),
        tie_embeddings=bool(d.get("tie_word_embeddings", True)), qkv_bias=True,
        max_seq_len=int(get("max_position_embeddings", "n_positions", default=2048)),
        family="hf", hf_model_type=hf_cfg.model_type, hf_config=d,
    )


class GenericSpeechLM(nn.Module):
    """A transformers ``AutoModelForCausalLM`` with the SpeechLM forward signature."""

    def __init__(self, hf_model: nn.Module, config: SpeechLMConfig | None = None):
        super().__init__()
        self.hf = hf_model
        self.config = config or config_from_generic(hf_model.config)
        params = inspect.signature(hf_model.forward).parameters
        self._takes_positions = "position_ids" in params
        self.attn_impl = "sdpa"

    @classmethod
    def from_config(cls, cfg: SpeechLMConfig) -> GenericSpeechLM:
        """Build (random weights) from a family "hf" SpeechLMConfig."""
        from transformers import CONFIG_MAPPING, AutoModelForCausalLM

        hf_cfg = CONFIG_MAPPING[cfg.hf_model_type].from_dict(dict(cfg.hf_config))
        hf_cfg.vocab_size = cfg.vocab_size
        return cls(AutoModelForCausalLM.from_config(hf_cfg), cfg)

    @classmethod
    def from_pretrained(cls, source: str | Path, dtype: torch.dtype = torch.float32
                        ) -> GenericSpeechLM:
        from slamlm.model.hf import load_hf_model

        return cls(load_hf_model(source, dtype=dtype).eval())

    def tied_keys(self) -> set[str]:
        """Parameter names that alias another parameter (e.g. a tied LM head)."""
        every = {n for n, _ in self.named_parameters(remove_duplicate=False)}
        return every - {n for n, _ in self.named_parameters()}

    def tie_weights(self) -> None:
        if getattr(self.hf.config, "tie_word_embeddings", False):
            self.hf.get_output_embeddings().weight = self.hf.get_input_embeddings().weight

    def set_attn_impl(self, impl: str) -> None:
        log.debug("generic HF model ignores attn_impl=%s", impl)

    def new_cache(self, batch_size: int, max_len: int, device=None, dtype=None) -> HFCache:
        return HFCache(max_len)

    def num_params(self, non_embedding: bool = False) -> int:
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            n -= self.hf.get_input_embeddings().weight.numel()
        return n

    def flops_per_token(self, seq_len: int) -> float:
        """6N + causal attention 6 * layers * hidden * T (same convention as SpeechLM)."""
        c = self.config
        return 6.0 * self.num_params() + 6.0 * c.n_layers * c.hidden_size * seq_len

    def _run(self, ids: Tensor, attention_mask: Tensor | None, cache: HFCache | None = None):
        """One transformers forward; with ``cache`` it continues from (and returns) its past."""
        past, past_len = (cache.past, cache.length) if cache is not None else (None, 0)
        kwargs: dict[str, Any] = {"use_cache": cache is not None}
        if attention_mask is not None:
            kwargs["attention_mask"] = attention_mask.long()
            if self._takes_positions:
                pos = (attention_mask.long().cumsum(1) - 1).clamp(min=0)
                kwargs["position_ids"] = pos[:, past_len:]
        return self.hf(input_ids=ids, past_key_values=past, **kwargs)

    def _forward_docs(self, input_ids: Tensor, doc_ids: Tensor) -> Tensor:
        """Split rows into documents, run them as one right-padded batch, scatter back."""
        spans = []
        for b in range(input_ids.shape[0]):
            _, counts = torch.unique_consecutive(doc_ids[b], return_counts=True)
            start = 0
            for n in counts.tolist():
                spans.append((b, start, start + n))
                start += n
        width = max(e - s for _, s, e in spans)
        ids = input_ids.new_zeros(len(spans), width)
        mask = torch.zeros(len(spans), width, dtype=torch.bool, device=input_ids.device)
        for i, (b, s, e) in enumerate(spans):
            ids[i, : e - s], mask[i, : e - s] = input_ids[b, s:e], True
        logits = self._run(ids, mask).logits.float()
        out = logits.new_zeros(*input_ids.shape, logits.shape[-1])
        for i, (b, s, e) in enumerate(spans):
            out[b, s:e] = logits[i, : e - s]
        return out

    def forward(self, input_ids: Tensor, doc_ids: Tensor | None = None, cache: HFCache | None = None,
                attention_mask: Tensor | None = None) -> Tensor:
        """Same contract as :meth:`SpeechLM.forward` (see module limitations)."""
        if doc_ids is not None:
            if cache is not None or attention_mask is not None:
                raise ValueError("doc_ids cannot be combined with cache/attention_mask")
            return self._forward_docs(input_ids, doc_ids)
        if cache is None:
            return self._run(input_ids, attention_mask).logits.float()
        B, T = input_ids.shape
        if cache.length + T > cache.max_len:
            raise ValueError(f"KV cache full: {cache.length + T} tokens > max_len {cache.max_len}")
        if attention_mask is None:
            attention_mask = torch.ones(B, cache.length + T, dtype=torch.bool,
                                        device=input_ids.device)
        out = self._run(input_ids, attention_mask, cache)
        cache.past = out.past_key_values
        cache.advance(T)
        return out.logits.float()
