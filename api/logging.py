"""Gateway logging: the same structured JSON setup as the worker."""

from asr.logs import configure_logging, get_logger

__all__ = ["configure_logging", "get_logger"]
