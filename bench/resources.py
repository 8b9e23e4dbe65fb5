"""CPU and memory of the services (psutil), and a description of the machine."""

from __future__ import annotations

import os
import platform
import threading
import time
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import urlparse

import psutil


def pid_listening_on(url: str) -> int | None:
    """The process listening on the port of `url` (an external stack: find the PID to sample)."""
    port = urlparse(url).port
    if port is None:
        return None
    try:
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
                return cast(int | None, conn.pid)  # psutil has no type hints
    except (psutil.AccessDenied, PermissionError):
        return None
    return None


def _tree(pid: int) -> list[psutil.Process]:
    try:
        proc = psutil.Process(pid)
        return [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of the processes and their children, so far."""
    total = 0.0
    for pid in pids:
        for proc in _tree(pid):
            try:
                times = proc.cpu_times()
                total += times.user + times.system
            except psutil.NoSuchProcess:
                continue
    return total


def rss_bytes(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        for proc in _tree(pid):
            try:
                total += proc.memory_info().rss
            except psutil.NoSuchProcess:
                continue
    return total


@dataclass
class Usage:
    """CPU and memory of some processes over an interval."""

    wall_sec: float
    cpu_sec: float
    rss_mean: float
    rss_max: int

    @property
    def cpu_percent(self) -> float:
        """Percent of one core."""
        return 100.0 * self.cpu_sec / self.wall_sec if self.wall_sec > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "wall_sec": round(self.wall_sec, 3),
            "cpu_sec": round(self.cpu_sec, 3),
            "cpu_percent_of_core": round(self.cpu_percent, 2),
            "rss_mean_mb": round(self.rss_mean / 2**20, 2),
            "rss_max_mb": round(self.rss_max / 2**20, 2),
        }


@dataclass
class Sampler:
    """Samples RSS in a thread; `usage()` gives CPU seconds and RSS since `start()`."""

    pids: list[int]
    interval_sec: float = 0.25
    _rss: list[int] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _t0: float = 0.0
    _cpu0: float = 0.0

    def start(self) -> Sampler:
        self._rss.clear()
        self._stop.clear()
        self._t0, self._cpu0 = time.monotonic(), cpu_seconds(self.pids)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self._rss.append(rss_bytes(self.pids))
            self._stop.wait(self.interval_sec)

    def usage(self) -> Usage:
        """Since start(); the sampler keeps running."""
        wall = time.monotonic() - self._t0
        cpu = cpu_seconds(self.pids) - self._cpu0
        rss = list(self._rss) or [rss_bytes(self.pids)]
        return Usage(wall, cpu, sum(rss) / len(rss), max(rss))

    def stop(self) -> Usage:
        usage = self.usage()
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=2)
        return usage


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_is_intel() -> bool:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            return any(line.startswith("vendor_id") and "GenuineIntel" in line for line in fh)
    except OSError:
        return False


def ct2_cpu_backend() -> str:
    """The GEMM backend CTranslate2 uses on the CPU in a process started with this environment:
    MKL on Intel CPUs and oneDNN on others, unless CT2_USE_MKL forces one (CTranslate2's own
    rule; CT2_VERBOSE=1 prints its choice). The two give different text for the same audio."""
    forced = os.environ.get("CT2_USE_MKL", "").strip().lower()
    if forced:
        return "MKL" if forced in ("1", "true", "on") else "oneDNN"
    return "MKL" if cpu_is_intel() else "oneDNN"


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    info: dict[str, Any] = {
        "cpu_model": cpu_model(),
        "ct2_cpu_backend": ct2_cpu_backend(),
        "logical_cores": os.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "load_avg_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
    }
    for module in ("ctranslate2", "faster_whisper", "numpy", "websockets"):
        try:
            info[module] = __import__(module).__version__
        except Exception:  # a gateway-only install has no ctranslate2: say so, do not fail
            info[module] = None
    try:
        import ctranslate2

        info["cuda_devices"] = ctranslate2.get_cuda_device_count()
    except Exception:
        info["cuda_devices"] = 0
    return info
