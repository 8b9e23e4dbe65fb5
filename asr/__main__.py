"""`python -m asr [--host H --port P]`: run one worker."""

from __future__ import annotations

import argparse

import uvicorn

from asr.config import WorkerSettings
from asr.features import BLAS_ENV
from asr.main import create_app
from contracts.process import WORKER_MALLOC, reexec_with_malloc_settings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="faster-whisper ASR worker")
    parser.add_argument("--host", help="bind address (ASR_WORKER_HOST)")
    parser.add_argument("--port", type=int, help="port (ASR_WORKER_PORT, default 8001)")
    args = parser.parse_args(argv)
    if argv is None:
        # why and the figures: contracts/process.py and asr/features.py
        reexec_with_malloc_settings("asr", {**WORKER_MALLOC, **BLAS_ENV})
    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    settings = WorkerSettings(**overrides)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        timeout_graceful_shutdown=30,
    )


if __name__ == "__main__":
    main()
