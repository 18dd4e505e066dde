"""Generation: KV-cached sampling (``sampling``), vocoders (``hifigan``, ``mel_inverse``,
``vocoder``) and the ``slam generate`` runner (``runner``). Submodules are imported lazily.

Example:
    >>> # from slamlm.generate.sampling import generate
    >>> # from slamlm.generate.vocoder import load_vocoder
"""
