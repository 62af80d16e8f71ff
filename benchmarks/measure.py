"""Measuring helpers for the benchmarks: wall time, peak memory, the machine.

Peak memory, two kinds, both as *increase over the level at the start of the step*:

* Python tools and SpatiaLite (which runs inside this process): the process's peak resident
  set (``VmHWM``), reset before the step by writing ``5`` to ``/proc/self/clear_refs``
  (Linux ≥ 4.0). Unlike ``tracemalloc`` this also sees GEOS's and SQLite's C allocations.
* PostGIS: the server process's private memory, ``RssAnon`` of the backend running the
  statement plus its parallel workers, sampled every 20 ms from ``/proc`` (so this needs the
  server on this machine and root or the ``postgres`` user; otherwise ``None``). Shared
  buffers are excluded — they are the server's cache, sized by configuration, not by the
  step — and temporary files written by sorts are reported separately (``temp_bytes``).
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
import platform
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def _status_kb(pid: int | str, key: str) -> int | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    m = re.search(rf"^{key}:\s+(\d+) kB", text, re.M)
    return int(m.group(1)) if m else None


def _trim() -> None:
    """Return freed heap to the OS so the next step's RSS starts from what is really used."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # not glibc
        ctypes.CDLL("libc.so.6").malloc_trim(0)


@dataclass
class Sample:
    """One measured run of a step."""

    seconds: float
    peak_mb: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@contextmanager
def process_peak() -> Iterator[dict[str, float | None]]:
    """Peak RSS increase of this process over the block, in MB (``out["peak_mb"]``)."""
    out: dict[str, float | None] = {"peak_mb": None}
    _trim()
    start = _status_kb("self", "VmRSS")
    try:
        Path("/proc/self/clear_refs").write_text("5")
        resettable = True
    except OSError:
        resettable = False
    yield out
    peak = _status_kb("self", "VmHWM")
    if resettable and start is not None and peak is not None:
        out["peak_mb"] = max(0, peak - start) / 1024


def time_python(fn: Callable[[], Any]) -> tuple[Sample, Any]:
    """Run ``fn`` once: wall time and peak RSS increase."""
    with process_peak() as mem:
        t0 = time.perf_counter()
        result = fn()
        seconds = time.perf_counter() - t0
    return Sample(seconds, mem["peak_mb"]), result


class ServerMemory:
    """Samples the private memory of a PostgreSQL backend and its parallel workers."""

    def __init__(self, backend_pid: int, interval: float = 0.02) -> None:
        self.pid = backend_pid
        self.interval = interval
        self.readable = _status_kb(backend_pid, "RssAnon") is not None
        self.base_kb = _status_kb(backend_pid, "RssAnon") or 0
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._tag = f"parallel worker for PID {backend_pid}".encode()

    def _workers(self) -> list[str]:
        pids = []
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                try:
                    with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                        if self._tag in f.read():
                            pids.append(entry.name)
                except OSError:
                    continue
        return pids

    def _sample(self) -> None:
        total = (_status_kb(self.pid, "RssAnon") or 0) - self.base_kb
        for w in self._workers():
            total += _status_kb(w, "RssAnon") or 0
        self.peak_kb = max(self.peak_kb, total)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> ServerMemory:
        if self.readable:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.readable:
            self._stop.set()
            self._thread.join()
            self._sample()

    @property
    def peak_mb(self) -> float | None:
        return self.peak_kb / 1024 if self.readable else None


def machine() -> dict[str, Any]:
    """CPU model, cores, memory, OS and Python versions."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:  # pragma: no cover
        pass
    mem_kb = _status_meminfo("MemTotal")
    return {
        "cpu_model": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(mem_kb / 1024 / 1024, 1) if mem_kb else None,
        "os": platform.platform(),
        "python": platform.python_version(),
    }


def _status_meminfo(key: str) -> int | None:
    try:
        m = re.search(rf"^{key}:\s+(\d+) kB", Path("/proc/meminfo").read_text(), re.M)
    except OSError:  # pragma: no cover
        return None
    return int(m.group(1)) if m else None


def python_versions() -> dict[str, str]:
    import geopandas
    import numpy
    import shapely
    import sqlalchemy

    out = {
        "numpy": numpy.__version__,
        "shapely": shapely.__version__,
        "geos (shapely)": shapely.geos_version_string,
        "geopandas": geopandas.__version__,
        "sqlalchemy": sqlalchemy.__version__,
    }
    try:
        import psycopg

        out["psycopg"] = psycopg.__version__
    except ImportError:  # pragma: no cover
        pass
    return out
