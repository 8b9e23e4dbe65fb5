"""Structured JSON logging (structlog) for both services: one JSON object per line on stdout,
stdlib loggers (uvicorn, httpx) through the same pipe, API keys redacted everywhere."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, cast

import structlog

# API keys must never reach the logs, wherever they hide (a query string logged by uvicorn, an
# Authorization header, a "bearer.<key>" WebSocket subprotocol, OpenAI's browser subprotocol)
_SECRETS = re.compile(
    r"(api_key=|bearer[ .:]\s*|openai-insecure-api-key\.)[^&\s\"',;]+", re.IGNORECASE
)


def redact(text: str) -> str:
    return _SECRETS.sub(r"\1[redacted]", text)


class _RedactFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        return True


def _redacted(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _redacted(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redacted(v) for v in value]
    return value


def redact_event(_logger: object, _name: str, event: MutableMapping[str, Any]) -> dict[str, Any]:
    """structlog processor: every string field (nested too) with API keys redacted."""
    return {k: _redacted(v) for k, v in event.items()}


def configure_logging(level: str = "INFO") -> None:
    """One JSON object per line on stdout; stdlib loggers (uvicorn) go through the same pipe."""
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.format_exc_info,
            redact_event,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(sys.stdout),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.addFilter(_RedactFilter())
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                redact_event,
                structlog.processors.JSONRenderer(),
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    # uvicorn's access log would be one line per request on top of ours
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    # faster-whisper logs every call at INFO ("Processing audio with duration ...")
    logging.getLogger("faster_whisper").setLevel(logging.WARNING)
    # httpx logs every request at INFO: one line per window is noise, not information
    logging.getLogger("httpx").setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    # structlog.get_logger returns Any: a lazy proxy of the configured wrapper class
    return cast(structlog.stdlib.BoundLogger, structlog.get_logger(name))
