"""Which shard a job is, and which shard an id belongs to (``--shard i/n``).

``--shard`` is ``i/n``; ``auto``: torchrun's ``RANK``/``WORLD_SIZE``, else a SLURM array's
``SLURM_ARRAY_TASK_ID``/``SLURM_ARRAY_TASK_COUNT`` (counted from ``SLURM_ARRAY_TASK_MIN``),
else ``0/1``; ``slurm``: the SLURM array (an error outside one); None: ``RANK``/``WORLD_SIZE``
or ``0/1`` (an unsharded job inside an array stays unsharded). Ids go to shards by a hash, so
the split does not depend on input order and needs no coordination.

Example:
    >>> parse_shard("1/4"), shard_of("a/b", 1), shard_tag(2, 3)
    ((1, 4), 0, '-2of3')
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping

SHARD_RE = re.compile(r"-(\d+)of(\d+)")


def _slurm(env: Mapping[str, str]) -> tuple[int, int] | None:
    if "SLURM_ARRAY_TASK_ID" not in env or "SLURM_ARRAY_TASK_COUNT" not in env:
        return None
    lo = int(env.get("SLURM_ARRAY_TASK_MIN", 0))
    return int(env["SLURM_ARRAY_TASK_ID"]) - lo, int(env["SLURM_ARRAY_TASK_COUNT"])


def _check(i: int, n: int, shard: str) -> tuple[int, int]:
    if not (n >= 1 and 0 <= i < n):
        raise ValueError(f"--shard {shard!r} gives {i}/{n}: need 0 <= i < n (a SLURM array "
                         f"must be contiguous, e.g. --array=0-31)")
    return i, n


def parse_shard(shard: str | None, env: Mapping[str, str] | None = None) -> tuple[int, int]:
    """``"i/n"`` / ``"auto"`` / ``"slurm"`` / None -> (i, n) (module docstring)."""
    env = os.environ if env is None else env
    if shard is None or shard == "auto":
        if "WORLD_SIZE" in env or shard is None:
            return _check(int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)), "RANK/WORLD_SIZE")
        got = _slurm(env)
        return _check(*got, "auto (SLURM array)") if got else (0, 1)
    if shard == "slurm":
        got = _slurm(env)
        if got is None:
            raise ValueError("--shard slurm: SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT are not "
                             "set (submit with sbatch --array=0-N, or give --shard i/n)")
        return _check(*got, "slurm")
    try:
        i, n = (int(v) for v in shard.split("/"))
    except ValueError as e:
        raise ValueError(f"--shard {shard!r}: expected i/n such as 0/4, auto or slurm") from e
    return _check(i, n, shard)


def shard_of(record_id: str, n: int) -> int:
    """Deterministic shard of an id (independent of input order)."""
    return int(hashlib.sha1(record_id.encode()).hexdigest()[:8], 16) % n


def shard_tag(i: int, n: int) -> str:
    """The file-name tag of shard i of n: ``-<i>of<n>``, empty when unsharded."""
    return "" if n == 1 else f"-{i}of{n}"
