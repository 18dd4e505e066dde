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
