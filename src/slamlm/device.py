"""The one device resolver: ``auto`` -> the local GPU when there is one, else the CPU.

Example:
    >>> resolve_device("cpu")
    device(type='cpu')
    >>> resolve_device("auto", local_rank=0).type in ("cpu", "cuda")
    True
"""

from __future__ import annotations

import torch


def resolve_device(device: str | torch.device | None = "auto", local_rank: int = 0) -> torch.device:
    """``auto``/None/"" -> ``cuda:<local_rank>`` when a GPU is visible, else ``cpu``; a named
    device is checked (a clear error instead of a CUDA traceback deep inside a stage)."""
    if isinstance(device, torch.device):
        dev = device
    else:
        name = (device or "auto").strip().lower()
        if name == "auto":
            name = "cuda" if torch.cuda.is_available() else "cpu"
        try:
            dev = torch.device(name)
        except RuntimeError as e:
            raise ValueError(f"device {device!r}: not a device name (use auto, cpu, cuda or "
                             f"cuda:N)") from e
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r}: no CUDA GPU is visible here; use "
                             "--set device=cpu or auto")
        if dev.index is None:
            dev = torch.device("cuda", local_rank)
    return dev


_BF16_FAST: dict[str, bool] = {}


def bf16_is_fast(device: torch.device) -> bool:
    """Whether bf16 matmuls beat fp32 clearly here (>= 1.5x): always on a CUDA GPU; on a CPU
    by a ~0.1 s probe, done once per process (native bf16 (AMX / AVX512-BF16) CPUs measure
    ~4x; others emulate bf16 and are slower)."""
    if device.type == "cuda":
        return True
    if device.type != "cpu":
        return False
    key = f"cpu:{torch.get_num_threads()}"
    if key not in _BF16_FAST:
        _BF16_FAST[key] = _probe_cpu_bf16()
    return _BF16_FAST[key]


def _probe_cpu_bf16(n: int = 512, reps: int = 3) -> bool:
    import time

    times = {}
    for dtype in (torch.float32, torch.bfloat16):
        a = torch.randn(n, n).to(dtype)
        a @ a  # warm-up (kernel selection)
        t0 = time.perf_counter()
        for _ in range(reps):
            a @ a
        times[dtype] = time.perf_counter() - t0
    return times[torch.float32] >= 1.5 * times[torch.bfloat16]
