"""Token shards (uint16/uint32 memmap + index), packing units into documents, packed windows.

Example:
    >>> # from slamlm.data import PackConfig, run_pack, TokenShard, PackedWindows
"""

from slamlm.data.pack import PackConfig, run_pack
from slamlm.data.shards import ShardError, TokenShard, read_index
from slamlm.data.windows import IGNORE, DataPosition, MicroBatch, PackedWindows, WindowSampler

__all__ = ["PackConfig", "run_pack", "ShardError", "TokenShard", "read_index", "IGNORE",
           "DataPosition", "MicroBatch", "PackedWindows", "WindowSampler"]
