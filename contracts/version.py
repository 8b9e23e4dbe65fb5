"""The project's version, as installed (both services report it)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def package_version() -> str:
    try:
        return version("realtime-asr")
    except PackageNotFoundError:
        return "0+unknown"
