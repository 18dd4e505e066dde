"""SpeechLM: native Llama/Qwen2-family decoder, HF import/export, TWIST init, checkpoints.

Example:
    >>> from slamlm.model import SpeechLM, named_shape
    >>> m = SpeechLM(named_shape("tiny"))
    >>> m.config.vocab_size
    503
"""

from slamlm.model.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from slamlm.model.config import SpeechLMConfig, named_shape
from slamlm.model.hf import export_hf, import_hf
from slamlm.model.init import random_init, twist_init
from slamlm.model.transformer import KVCache, SpeechLM

__all__ = [
    "SpeechLMConfig", "SpeechLM", "KVCache", "named_shape", "save_checkpoint",
    "load_checkpoint", "CheckpointError", "import_hf", "export_hf",
    "twist_init", "random_init",
]
