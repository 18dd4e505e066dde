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


def _probe_cpu_bf16(n: int = 512, reps: int = 3, rounds: int = 5) -> bool:
    """fp32 vs bf16 matmul time, interleaved over ``rounds`` and the best round of each kept:
    one timing pair read a hiccup of the machine as "bf16 is slow" (seen once: a demo-sized
    control run then trained in fp32 at half speed)."""
    import time

    mats = {dtype: torch.randn(n, n).to(dtype) for dtype in (torch.float32, torch.bfloat16)}
    for a in mats.values():
        a @ a  # warm-up (kernel selection)
    best = {dtype: float("inf") for dtype in mats}
    for _ in range(rounds):
        for dtype, a in mats.items():
            t0 = time.perf_counter()
            for _ in range(reps):
                a @ a
            best[dtype] = min(best[dtype], time.perf_counter() - t0)
    return best[torch.float32] >= 1.5 * best[torch.bfloat16]


def cpu_cores() -> int:
    """Cores this process may run on (its CPU affinity), at least 1."""
    import os

    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def thread_candidates(cores: int) -> list[int]:
    """``cores``, then halvings down to 1: the thread counts :func:`pick_cpu_threads` tries.

    Example:
        >>> thread_candidates(2), thread_candidates(12)
        ([2, 1], [12, 6, 3, 1])
    """
    out = [cores]
    while out[-1] > 1:
        out.append(out[-1] // 2)
    return out


def pick_cpu_threads(probe_s: float = 0.08, rounds: int = 3, margin: float = 1.2) -> int:
    """The torch thread count that multiplies fastest right now (a ~0.5 s probe).

    All cores on an idle machine; fewer when other jobs hold cores: a multi-threaded step waits
    for its slowest thread at every parallel region, so one descheduled thread stalls all of
    them (on 2 shared cores, 2 threads trained the demo ~10x slower than 1 thread,
    bench/cpu_threads_under_load.py). The probe is a chain of matmuls the size of a demo
    micro-batch (2048 tokens x 576, bf16 where bf16 is fast), each candidate timed in
    ``rounds`` interleaved slots, best slot kept. Fewer threads than the cores are chosen only
    when they are at least ``margin`` times faster: on an idle 2-core machine a smaller probe
    read noise as "1 thread is faster" and one demo trained at 1450 instead of 2200 tokens/s
    for the rest of its budget. Leaves torch set to the chosen count.

    Example:
        >>> 1 <= pick_cpu_threads(probe_s=0.01, rounds=1) <= cpu_cores()
        True
    """
    import time

    cands = thread_candidates(cpu_cores())
    if len(cands) == 1:
        torch.set_num_threads(1)
        return 1
    dtype = torch.bfloat16 if bf16_is_fast(torch.device("cpu")) else torch.float32
    x = torch.randn(2048, 576).to(dtype)
    w = torch.randn(576, 1536).to(dtype) / 24.0
    best = dict.fromkeys(cands, 0.0)
    for _ in range(rounds):
        for n in cands:
            torch.set_num_threads(n)
            (x @ w) @ w.T  # warm-up at this thread count
            done, t0 = 0, time.perf_counter()
            while (dt := time.perf_counter() - t0) < probe_s:
                (x @ w) @ w.T
                done += 1
            best[n] = max(best[n], done / dt)
    pick = max(cands, key=lambda n: (best[n], n))
    if best[pick] < margin * best[cands[0]]:
        pick = cands[0]  # all cores unless fewer are clearly faster
    torch.set_num_threads(pick)
    return pick


# other processes keeping fewer cores than this busy leave the machine "idle" for
# set_cpu_threads (measured: an idle 2-core box reads 0.00-0.05; one competing job ~1.0)
IDLE_CORES = 0.25


def _cpu_ticks() -> tuple[int, int] | None:
    """(busy, total) jiffies of all CPUs from ``/proc/stat`` (None where it is unreadable)."""
    try:
        with open("/proc/stat") as f:
            vals = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    if len(vals) < 4:
        return None
    idle = vals[3] + (vals[4] if len(vals) > 4 else 0)  # idle + iowait
    total = sum(vals[:8])  # user nice system idle iowait irq softirq steal (not guest: in user)
    return total - idle, total


def cores_busy_elsewhere(window_s: float = 0.2) -> float | None:
    """How many cores processes other than this one kept busy over the next ``window_s``:
    the whole machine's busy time (``/proc/stat``, steal included) minus this process's CPU
    time, per second. None where ``/proc/stat`` is not readable (not Linux).

    Example:
        >>> x = cores_busy_elsewhere(0.05)
        >>> x is None or x >= 0.0
        True
    """
    import os
    import time

    a = _cpu_ticks()
    if a is None:
        return None
    own0, t0 = sum(os.times()[:2]), time.perf_counter()
    time.sleep(window_s)
    b = _cpu_ticks()
    own1, t1 = sum(os.times()[:2]), time.perf_counter()
    if b is None or b[1] <= a[1]:
        return None
    hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    busy_s = (b[0] - a[0]) / hz
    return max(0.0, (busy_s - (own1 - own0)) / (t1 - t0))


def set_cpu_threads(threads: int = 0, world: int = 1) -> int:
    """Set torch's CPU threads for a stage and return the count: ``threads`` when > 0; else
    (auto) all cores when no other process keeps a core busy (:func:`cores_busy_elsewhere`, a
    0.2 s look at ``/proc/stat``), or the fastest count now by :func:`pick_cpu_threads` (a
    ~2 s matmul probe) when one does; unless ``OMP_NUM_THREADS`` is set or several processes
    share the machine (``world`` > 1: torchrun sets one thread each).

    Example:
        >>> set_cpu_threads(1)
        1
    """
    import logging
    import os

    if threads > 0:
        torch.set_num_threads(threads)
        return threads
    if world > 1 or os.environ.get("OMP_NUM_THREADS"):
        return torch.get_num_threads()
    before = torch.get_num_threads()
    others = cores_busy_elsewhere()
    if others is not None and others < IDLE_CORES:
        n = cpu_cores()  # nothing else runs: all cores, no matmul probe (~2 s on 2 cores)
        torch.set_num_threads(n)
    else:
        n = pick_cpu_threads()
    if n != before:
        logging.getLogger(__name__).info(
            "CPU threads: %d -> %d (fastest now%s)", before, n,
            "; other jobs hold cores" if n < before else "")
    return n
