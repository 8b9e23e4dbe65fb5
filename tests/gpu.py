"""Whether this machine has an NVIDIA GPU the worker can use (tests marked `gpu` need one)."""

from __future__ import annotations


def cuda_devices() -> int:
    try:
        import ctranslate2

        return ctranslate2.get_cuda_device_count()
    except Exception:
        return 0
