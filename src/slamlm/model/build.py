"""``build_model(cfg)``: a fresh model for a SpeechLMConfig, native or generic HF.

Example:
    >>> from slamlm.model.config import named_shape
    >>> type(build_model(named_shape("tiny"))).__name__
    'SpeechLM'
"""

from __future__ import annotations

from torch import nn

from slamlm.model.config import SpeechLMConfig
from slamlm.model.generic import GenericSpeechLM
from slamlm.model.transformer import SpeechLM


def build_model(cfg: SpeechLMConfig) -> nn.Module:
    """An (initialised) model for ``cfg``: native or generic HF."""
    if cfg.family == "hf":
        return GenericSpeechLM.from_config(cfg)
    return SpeechLM(cfg)
