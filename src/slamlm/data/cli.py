"""``slam pack UNITS --out TOKENS`` and ``slam pack-interleaved UNITS --manifest M --out T``.

Example:
    $ slam pack run/units --out run/tokens --val-fraction 0.01 --context 1024
    $ slam pack-interleaved run/units --manifest words.jsonl --init run/init_il --out run/tok_il
"""

from __future__ import annotations

from slamlm.cli_adapter import Command

COMMAND = Command("pack", "pack units JSONL into token shards (train/val .bin + index)",
                  config="slamlm.data.pack:PackConfig", run="slamlm.data.pack:run_pack",
                  positional=("units",))

INTERLEAVED = Command(
    "pack-interleaved", "speech-text interleaved token shards",
    config="slamlm.data.interleave_pack:InterleavePackConfig",
    run="slamlm.data.interleave_pack:run_pack_interleaved", positional=("units",),
    description="Units + word alignments (JSONL with id + words [[w, start, end]]) -> token "
                "shards mixing text-only, interleaved and speech-only documents.")
