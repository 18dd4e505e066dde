"""Token shards (uint16/uint32 memmap + index), packing units into documents, training rows
(whole documents first-fit decreasing or one per row, or fixed windows).

Example:
    >>> # from slamlm.data import PackConfig, run_pack, TokenShard, PackedDocuments
"""

from slamlm.data.documents import PACKINGS, PackedDocuments, packed_rows
from slamlm.data.pack import PackConfig, run_pack
from slamlm.data.shards import ShardError, TokenShard, read_index
from slamlm.data.windows import (
    IGNORE,
    DataPosition,
    MicroBatch,
    PackedWindows,
    Rows,
    WindowSampler,
)

__all__ = ["PackConfig", "run_pack", "ShardError", "TokenShard", "read_index", "IGNORE",
           "DataPosition", "MicroBatch", "PackedWindows", "WindowSampler", "Rows",
           "PackedDocuments", "packed_rows", "PACKINGS"]
