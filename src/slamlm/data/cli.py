"""``slam pack UNITS --out TOKENS``: units JSONL folder -> token shards.

Example:
    $ slam pack run/units --out run/tokens --val-fraction 0.01 --context 1024
"""

from __future__ import annotations

from slamlm.cli_adapter import Command

COMMAND = Command("pack", "pack units JSONL into token shards (train/val .bin + index)",
                  config="slamlm.data.pack:PackConfig", run="slamlm.data.pack:run_pack",
                  positional=("units",))
