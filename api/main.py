"""Gateway application factory: `create_app(settings)`."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from api.auth import KeyStore
from api.config import GatewaySettings
from api.metrics import GatewayMetrics
from api.openai import errors as openai_errors
from api.pool import PoolClient
from api.registry import SessionRegistry
from api.routes import files, health, models, realtime, sessions, ws
from api.static import NoCacheStaticFiles
from api.vad_model import find_model, load_model
from contracts.body_limit import BodySizeLimit
from contracts.logs import configure_logging, get_logger
from contracts.version import package_version

log = get_logger("api.main")


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()
    configure_logging(settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.pool = PoolClient(
            settings.upstream_url, settings.request_timeout_sec, settings.worker_outage_sec
        )
        app.state.file_limiter = asyncio.Semaphore(settings.file_concurrency)
        # the one Silero VAD every session shares, loaded before the first session needs it
        app.state.vad_model = (
            await asyncio.to_thread(load_model, find_model(settings.vad_model_path))
            if settings.vad_enabled
            else None
        )
        # what exists now (modules, schemas, the model) lives as long as the process: keep it
        # out of the collector's full passes, which otherwise stall the event loop ~45 ms
        gc.freeze()
        log.info("gateway_started", upstream=settings.upstream_url, version=app.state.version)
        if not settings.auth_required:
            log.warning(
                "auth_disabled",
                message="API keys are NOT required: anyone who reaches this port can transcribe."
                " Set ASR_AUTH_REQUIRED=true and ASR_API_KEYS for anything but a local demo.",
            )
        try:
            yield
        finally:
            await app.state.pool.close()

    app = FastAPI(title="Real-time ASR gateway", version=package_version(), lifespan=lifespan)
    app.state.settings = settings
    app.state.metrics = GatewayMetrics()
    app.state.version = package_version()
    app.state.started_at = int(time.time())
    app.state.keys = KeyStore.load(settings.api_keys, settings.api_keys_file)
    app.state.registry = SessionRegistry(
        settings.max_sessions, settings.max_sessions_per_key, settings.transcript_ttl_sec
    )
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.file_max_bytes,
        too_large=lambda message: openai_errors.OpenAIHTTPError(413, message, "too_large"),
        refusal=openai_errors.refusal_body,
    )
    openai_errors.install(app)  # OpenAI's error shape on /v1/*
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.include_router(health.router)
    app.include_router(files.router)
    app.include_router(sessions.router)
    app.include_router(ws.router)
    app.include_router(models.router)
    app.include_router(realtime.router)
    if settings.frontend_dir.is_dir():
        app.mount(
            "/", NoCacheStaticFiles(directory=settings.frontend_dir, html=True), name="frontend"
        )
    return app
