"""What every part of the GPU suite shares: its result handle, device facts, synthetic data.

Example:
    >>> shard = walk_shard(5000, mean_len=300, seed=0)
    >>> int(shard.tokens[0]), bool(shard.doc_lengths.sum() == shard.n_tokens)
    (1, True)
"""

from __future__ import annotations

import json
import math
import os
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from slamlm.data.shards import TokenShard
from slamlm.data.synthetic import random_walk
from slamlm.vocab import UnitVocab

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Part:
    """One part's run: its budget, scratch folder and the rows it measured.

    Every :meth:`add` rewrites ``result_path`` (JSON), so when the part is killed at its time
    limit the suite still reads what was measured before.
    """

    name: str
    dry: bool
    seconds: float  # the part's time limit (its process is killed after it)
    result_path: Path
    work: Path  # scratch folder, removed by the suite afterwards
    options: dict[str, Any] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    status: str = "ok"
    started: float = field(default_factory=time.perf_counter)

    @property
    def device(self) -> torch.device:
        """CUDA when present, except in a dry run (always the CPU)."""
        return torch.device("cuda" if torch.cuda.is_available() and not self.dry else "cpu")

    @property
    def gpu(self) -> bool:
        return self.device.type == "cuda"

    def left(self) -> float:
        """Seconds left before this part's process is killed."""
        return self.seconds - (time.perf_counter() - self.started)

    def add(self, variant: str, metrics: dict[str, float] | None = None, status: str = "ok",
            **info: Any) -> None:
        """Record one measured variant (``metrics``: positive numbers) and save."""
        clean = {k: float(v) for k, v in (metrics or {}).items() if v is not None}
        self.rows.append({"variant": variant, "status": status, "metrics": clean, "info": info})
        self.save("running")

    def save(self, status: str, error: str | None = None) -> None:
        out = {"part": self.name, "status": status, "error": error, "rows": self.rows,
               "notes": self.notes, "device": device_facts(self.device),
               "seconds": round(time.perf_counter() - self.started, 2)}
        tmp = self.result_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(out, indent=1, default=str))
        os.replace(tmp, self.result_path)


def device_facts(dev: torch.device) -> dict[str, Any]:
    """Device name, dense bf16 peak (TFLOP/s, by name; None when unknown) and versions."""
    from slamlm.train.distributed import DistInfo
    from slamlm.train.loop import peak_flops as _peak_flops

    facts: dict[str, Any] = {"torch": torch.__version__}
    try:
        import transformers

        facts["transformers"] = transformers.__version__
    except ImportError:
        pass
    if dev.type == "cuda":
        peak = _peak_flops(0.0, DistInfo(0, 1, 0, dev))
        facts.update(name=torch.cuda.get_device_name(dev), peak_tflops=peak / 1e12 if peak else None)
    else:
        facts.update(name=f"CPU ({torch.get_num_threads()} threads)", peak_tflops=None)
    return facts


def sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def reset_peak_memory(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
        torch.cuda.reset_peak_memory_stats(dev)


def peak_memory_gib(dev: torch.device) -> float:
    """CUDA: max allocated since the last reset. CPU: the process's max RSS (cumulative)."""
    if dev.type == "cuda":
        return torch.cuda.max_memory_allocated(dev) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def free_memory(dev: torch.device) -> None:
    import gc

    gc.collect()
    if dev.type == "cuda":
        torch.cuda.empty_cache()


def walk_shard(n_tokens: int, mean_len: float, seed: int, n_units: int = 500) -> TokenShard:
    """An in-memory shard of ``[bos] + units + [eos]`` documents, log-normal lengths around
    ``mean_len``, units from :func:`slamlm.data.synthetic.random_walk` (learnable)."""
    vocab = UnitVocab(n_units)
    rng = np.random.default_rng(seed)
    n_docs = int(n_tokens / mean_len * 1.5) + 8
    lens = np.maximum(4, rng.lognormal(math.log(mean_len), 0.5, n_docs)).astype(np.int64)
    lens = lens[: np.searchsorted(np.cumsum(lens), n_tokens) + 1]
    docs = [np.concatenate([[vocab.bos_id], vocab.encode_units(random_walk(int(n) - 2, n_units, rng)),
                            [vocab.eos_id]]) for n in lens]
    offsets = np.concatenate([[0], np.cumsum(lens)[:-1]])
    tokens = np.concatenate(docs).astype(np.uint16)
    return TokenShard(Path("."), "bench", tokens, offsets, lens, vocab, {})
