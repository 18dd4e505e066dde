"""SpiritLM-style speech-text interleaving, in one place above ``data`` and ``model``.

- :mod:`spans`: word-level switching between text and units (pure data).
- :mod:`pack`: units + word alignments + a text tokenizer -> interleaved token shards.
- :mod:`model`: interleaved SpeechLM init/load/save and per-modality losses.

Example:
    >>> # from slamlm.interleave.pack import InterleavePackConfig, run_pack_interleaved
"""
