"""NVIDIA GPU metrics through NVML, read at scrape time; absent (never a crash) without a GPU."""

from __future__ import annotations

import os
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector


class GpuCollector(Collector):
    """nvidia_gpu_utilization{gpu} and memory, labelled by host GPU index or UUID.

    Inside a container every GPU is index 0, so the label is ASR_WORKER_GPU_LABEL when the
    deployment sets it (the host index), else the GPU's UUID, which is the same everywhere.
    """

    def __init__(self, label: str | None = None) -> None:
        self._label = label or os.environ.get("ASR_WORKER_GPU_LABEL")
        self._nvml = None
        try:
            import pynvml

            pynvml.nvmlInit()
            if pynvml.nvmlDeviceGetCount() > 0:
                self._nvml = pynvml
        except Exception:
            self._nvml = None

    @property
    def available(self) -> bool:
        return self._nvml is not None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        if self._nvml is None:
            return
        nv = self._nvml
        util = GaugeMetricFamily(
            "nvidia_gpu_utilization", "GPU utilisation (%)", labels=["gpu", "uuid"]
        )
        used = GaugeMetricFamily(
            "nvidia_gpu_memory_used_bytes", "GPU memory used", labels=["gpu", "uuid"]
        )
        total = GaugeMetricFamily(
            "nvidia_gpu_memory_total_bytes", "GPU memory", labels=["gpu", "uuid"]
        )
        try:
            for index in range(nv.nvmlDeviceGetCount()):
                handle = nv.nvmlDeviceGetHandleByIndex(index)
                uuid = nv.nvmlDeviceGetUUID(handle)
                uuid = uuid.decode() if isinstance(uuid, bytes) else uuid
                label = self._label if self._label is not None else uuid
                if nv.nvmlDeviceGetCount() > 1 and self._label is not None:
                    label = f"{self._label}.{index}"
                rates = nv.nvmlDeviceGetUtilizationRates(handle)
                mem = nv.nvmlDeviceGetMemoryInfo(handle)
                util.add_metric([label, uuid], float(rates.gpu))
                used.add_metric([label, uuid], float(mem.used))
                total.add_metric([label, uuid], float(mem.total))
        except Exception:
            return
        yield util
        yield used
        yield total
