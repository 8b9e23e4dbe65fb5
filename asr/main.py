"""Worker application factory: `create_app(settings)`; the lifespan loads and warms the model."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, HTTPException

from asr.config import WorkerSettings
from asr.metrics import WorkerMetrics
from asr.routes import router
from asr.service import TranscriptionService
from contracts.body_limit import BodySizeLimit
from contracts.logs import configure_logging, get_logger
from contracts.version import package_version
from contracts.worker import ReadyResponse

log = get_logger("asr.main")


def create_app(settings: WorkerSettings | None = None) -> FastAPI:
    settings = settings or WorkerSettings()
    configure_logging(settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Loading runs in a thread so /health and /ready (503) answer while it happens.
        loader = asyncio.create_task(_load(app))
        try:
            yield
        finally:
            loader.cancel()
            app.state.service.scheduler.shutdown()

    app = FastAPI(title="ASR worker", version=package_version(), lifespan=lifespan)
    app.state.settings = settings
    app.state.ready = False
    app.state.metrics = WorkerMetrics()
    app.state.service = TranscriptionService(settings, app.state.metrics)
    app.state.ready_info = ReadyResponse(
        status="starting",
        model=settings.model,
        device=settings.resolved_device,
        compute_type=settings.resolved_compute_type,
        languages=settings.languages,
        version=package_version(),
    )
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.max_upload_bytes,
        too_large=lambda message: HTTPException(413, message),
    )
    app.include_router(router)
    return app


async def _load(app: FastAPI) -> None:
    from asr.model import SpeechModel

    settings: WorkerSettings = app.state.settings
    try:
        model = await asyncio.to_thread(SpeechModel, settings)
        if settings.warmup:
            await asyncio.to_thread(model.warm_up)
    except Exception:
        # A worker without a model is useless: say why, then stop the server cleanly.
        log.exception("model_load_failed", model=settings.model)
        os.kill(os.getpid(), signal.SIGTERM)
        return
    app.state.service.model = model
    app.state.ready = True
    log.info("worker_ready", model=settings.model, device=settings.resolved_device)
