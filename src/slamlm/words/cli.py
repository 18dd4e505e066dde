"""``slam align-words``: word timings (``aligned_text`` JSONL) for interleaving.

Example:
    $ slam align-words LibriSpeech/dev-clean --out run/words        # pocketsphinx
    $ slam align-words mfa_out --out run/words --tier words          # MFA TextGrids
    $ slam align-words LibriSpeech-Alignments/dev-clean --out run/words
    $ slam pack-interleaved run/units --alignments run/words --init run/init_il --out run/tok
"""

from __future__ import annotations

from slamlm.cli_adapter import Command

COMMAND = Command(
    "align-words", "word timings of real speech (forced alignment, TextGrid, LibriSpeech)",
    config="slamlm.words.runner:AlignWordsConfig", run="slamlm.words.runner:run_align_words",
    positional=("input",), description=__doc__)
