"""``slam init-interleaved`` and ``slam pack-interleaved``: the interleaving stages.

Example:
    $ slam init-interleaved path/to/SmolLM2 --out run/init_il --n-units 500
    $ slam pack-interleaved run/units --manifest words.jsonl --init run/init_il --out run/tok_il
    $ slam pack-interleaved run/units --alignments run/words --init run/init_il --out run/tok_il
"""

from __future__ import annotations

from slamlm.cli_adapter import Command

PACK = Command(
    "pack-interleaved", "speech-text interleaved token shards",
    config="slamlm.interleave.pack:InterleavePackConfig",
    run="slamlm.interleave.pack:run_pack_interleaved", positional=("units",),
    description="Units + word alignments (--alignments: slam align-words output, or --manifest: "
                "JSONL with id + words [[w, start, end]]) -> token "
                "shards mixing text-only, interleaved and speech-only documents.")

INIT = Command(
    "init-interleaved", "interleaved SpeechLM from a text LM",
    config="slamlm.interleave.model:InterleavedInitConfig",
    run="slamlm.interleave.model:run_init_interleaved", positional=("text_lm",),
    description="Text LM (folder, hub id or .gguf) -> interleaved SpeechLM checkpoint (text "
                "rows kept, unit rows TWIST-style, markers = mean row, text tokenizer inside).")
