"""SpeechLM: native Llama/Qwen2-family decoder, HF import/export, TWIST init, checkpoints.

Names are imported lazily (PEP 562) so ``slam --help`` (which imports ``slamlm.model.cli``)
does not import torch.

Example:
    >>> from slamlm.model import SpeechLM, named_shape
    >>> m = SpeechLM(named_shape("tiny"))
    >>> m.config.vocab_size
    503
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "SpeechLMConfig": "config", "named_shape": "config",
    "SpeechLM": "transformer", "KVCache": "transformer",
    "save_checkpoint": "checkpoint", "load_checkpoint": "checkpoint",
    "CheckpointError": "checkpoint",
    "import_hf": "hf", "export_hf": "hf",
    "twist_init": "init", "random_init": "init",
    "GenericSpeechLM": "generic",
}

__all__ = list(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'slamlm.model' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"slamlm.model.{_WHERE[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
