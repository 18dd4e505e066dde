"""The parts of ``bench/gpu_suite.py``, one module per group of parts.

``common`` holds what every part shares (its :class:`~suite.common.Part` handle, device facts,
synthetic packed data); ``checks`` runs ``pytest -m gpu``; ``train`` the training throughput
and the fixed-time quality check; ``units`` unit extraction; ``infer`` eval scoring and
generation. Each part is a function ``part_<name>(p: Part) -> None`` that adds result rows to
``p`` (saved to disk after every row, so a killed part still leaves what it measured).
"""
