"""The device resolver and the CPU thread choice (fastest count now; user settings win)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch

from slamlm import device as dev


def test_resolve_device_cpu_and_bad_name():
    assert dev.resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="not a device name"):
        dev.resolve_device("gpu0")


def test_thread_candidates_halve_down_to_one():
    assert dev.thread_candidates(1) == [1]
    assert dev.thread_candidates(2) == [2, 1]
    assert dev.thread_candidates(16) == [16, 8, 4, 2, 1]


def test_pick_cpu_threads_takes_the_fastest_and_sets_torch(monkeypatch):
    monkeypatch.setattr(dev, "cpu_cores", lambda: 2)
    n = torch.get_num_threads()
    try:
        picked = dev.pick_cpu_threads(probe_s=0.01, rounds=1)
        assert picked in (1, 2)
        assert torch.get_num_threads() == picked
    finally:
        torch.set_num_threads(n)


def _two_fake_cores(monkeypatch, delay: dict[int, float], rows: int | None = None) -> dict:
    """2 'cores' whose matmuls sleep ``delay[threads]`` s (torch really runs 1 thread); returns
    the state holding the thread count torch was last set to."""
    import time as _time

    monkeypatch.setattr(dev, "cpu_cores", lambda: 2)
    real_set, real_matmul = torch.set_num_threads, torch.Tensor.__matmul__
    state = {"n": 1}

    def fake_set(k):
        state["n"] = k
        real_set(1)

    def timed_matmul(a, b):
        _time.sleep(delay.get(state["n"], 0.0))
        return real_matmul(a if rows is None else a[:rows], b)

    monkeypatch.setattr(torch, "set_num_threads", fake_set)
    monkeypatch.setattr(torch.Tensor, "__matmul__", timed_matmul)
    return state


def test_pick_cpu_threads_prefers_the_faster_count(monkeypatch):
    """With 2 threads made artificially slow (a stalled core), the probe picks 1."""
    state = _two_fake_cores(monkeypatch, {2: 0.05})
    assert dev.pick_cpu_threads(probe_s=0.1, rounds=2) == 1
    assert state["n"] == 1


def test_pick_cpu_threads_keeps_all_cores_unless_fewer_are_clearly_faster(monkeypatch):
    """1 thread 10% faster (probe noise on an idle machine) is not enough to give up a core."""
    _two_fake_cores(monkeypatch, {2: 0.011, 1: 0.010}, rows=8)  # the sleeps dominate
    assert dev.pick_cpu_threads(probe_s=0.1, rounds=2) == 2
    assert dev.pick_cpu_threads(probe_s=0.1, rounds=2, margin=1.0) == 1


def test_set_cpu_threads_respects_explicit_and_env(monkeypatch):
    n = torch.get_num_threads()
    try:
        assert dev.set_cpu_threads(1) == 1 and torch.get_num_threads() == 1
        called = []
        monkeypatch.setattr(dev, "pick_cpu_threads", lambda: called.append(1) or 1)
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        dev.set_cpu_threads(0)
        assert not called  # the user's OMP_NUM_THREADS wins
        monkeypatch.delenv("OMP_NUM_THREADS")
        dev.set_cpu_threads(0, world=2)
        assert not called  # torchrun processes keep their one thread each
        monkeypatch.setattr(dev, "cores_busy_elsewhere", lambda: 1.0)
        dev.set_cpu_threads(0)
        assert called == [1]
    finally:
        torch.set_num_threads(n)


def test_set_cpu_threads_takes_all_cores_without_a_probe_when_nothing_else_runs(monkeypatch):
    n = torch.get_num_threads()
    called = []
    monkeypatch.setattr(dev, "pick_cpu_threads", lambda: called.append(1) or 1)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(dev, "cpu_cores", lambda: 2)
    try:
        monkeypatch.setattr(dev, "cores_busy_elsewhere", lambda: 0.05)
        assert dev.set_cpu_threads(0) == 2 and torch.get_num_threads() == 2 and not called
        monkeypatch.setattr(dev, "cores_busy_elsewhere", lambda: 0.6)  # another job: probe
        assert dev.set_cpu_threads(0) == 1 and called == [1]
        monkeypatch.setattr(dev, "cores_busy_elsewhere", lambda: None)  # no /proc/stat: probe
        assert dev.set_cpu_threads(0) == 1 and called == [1, 1]
    finally:
        torch.set_num_threads(n)


@pytest.mark.skipif(not Path("/proc/stat").is_file(), reason="needs Linux /proc/stat")
def test_cores_busy_elsewhere_sees_another_process_and_not_this_one():
    import subprocess
    import sys

    spin = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        assert dev.cores_busy_elsewhere(0.3) > 0.5  # one spinning process: ~1 core
    finally:
        spin.kill()
        spin.wait()
    import threading

    stop = threading.Event()

    def spin_here() -> None:  # this process busy on one core: not counted as elsewhere
        while not stop.is_set():
            pass

    th = threading.Thread(target=spin_here)
    th.start()
    try:
        busy = [dev.cores_busy_elsewhere(0.3)]
    finally:
        stop.set()
        th.join()
    assert busy[0] < 0.5


def test_cpu_ticks_reads_busy_and_total(monkeypatch, tmp_path):
    import builtins

    stat = tmp_path / "stat"
    stat.write_text("cpu  100 5 50 800 20 3 2 10 0 0\ncpu0 1 2 3 4\n")
    real_open = builtins.open
    monkeypatch.setattr(builtins, "open",
                        lambda f, *a, **k: real_open(stat if f == "/proc/stat" else f, *a, **k))
    assert dev._cpu_ticks() == (170, 990)  # busy = all but idle (800) and iowait (20)
    stat.write_text("garbage\n")
    assert dev._cpu_ticks() is None
