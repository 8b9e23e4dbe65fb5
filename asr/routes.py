"""HTTP endpoints of the worker: `POST /transcribe`, health, readiness and metrics."""

from __future__ import annotations

import time
from typing import Annotated, cast

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.datastructures import UploadFile

from asr.scheduler import QueueFull
from asr.service import NotReady, TranscriptionService
from asr.vad import SpeechSpan, as_spans
from contracts.audio import AudioRejected
from contracts.logs import get_logger
from contracts.worker import (
    FormError,
    ReadyResponse,
    TranscriptionResponse,
    WorkerRequest,
    from_form,
)

log = get_logger("asr.routes")
router = APIRouter()


def get_service(request: Request) -> TranscriptionService:
    return cast(TranscriptionService, request.app.state.service)  # starlette's State is untyped


Service = Annotated[TranscriptionService, Depends(get_service)]


@router.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/ready", response_model=ReadyResponse, responses={503: {"model": ReadyResponse}})
async def ready(request: Request) -> JSONResponse:
    body = request.app.state.ready_info.model_copy(
        update={"status": "ready" if request.app.state.ready else "starting"}
    )
    return JSONResponse(body.model_dump(), status_code=200 if request.app.state.ready else 503)


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    return Response(
        generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST
    )


@router.post(
    "/transcribe",
    response_model=TranscriptionResponse,
    responses={400: {}, 413: {}, 415: {}, 422: {}, 503: {}},
    description="multipart form: `file` (an audio file, or raw PCM16 with format=pcm_s16le) "
    "and the fields of contracts.worker (docs/protocol.md, worker API)",
)
async def transcribe(request: Request, service: Service) -> Response:
    started = time.perf_counter()
    status, result, error, request_fields = 200, None, None, None
    try:
        async with request.form() as form:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise FormError("file: a multipart field `file` holding the audio is required")
            fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
            request_fields = from_form(fields, service.settings.languages)
            data = await upload.read()
        audio = await service.decode(data, request_fields.audio_format, request_fields.sample_rate)
        decode_ms = (time.perf_counter() - started) * 1000
        result = await service.transcribe(
            audio, request_fields.options, request_fields.priority, _spans(request_fields)
        )
        result.timing.decode_ms = round(decode_ms, 2)
        return JSONResponse(result.model_dump())
    except FormError as exc:
        status, error = 422, exc.message
        return _error(422, exc.message, exc.code)
    except AudioRejected as exc:
        status, error = exc.status, exc.message
        return _error(exc.status, exc.message, exc.code)
    except NotReady as exc:
        status, error = 503, str(exc)
        return _error(503, str(exc), "not_ready", service.settings.retry_after_sec)
    except QueueFull as exc:
        status, error = 503, str(exc)
        return _error(503, f"worker busy: {exc}", "busy", service.settings.retry_after_sec)
    finally:
        service.metrics.requests.labels("transcribe", str(status)).inc()
        log.info(
            "transcribe",
            status=status,
            error=error,
            priority=request_fields.priority.name if request_fields else None,
            spans_sent=request_fields.speech_spans is not None if request_fields else None,
            audio_sec=round(result.duration_sec, 3) if result else None,
            language=result.language if result else None,
            queue_ms=result.timing.queue_ms if result else None,
            inference_ms=result.timing.inference_ms if result else None,
            total_ms=round((time.perf_counter() - started) * 1000, 2),
        )


def _spans(request: WorkerRequest) -> list[SpeechSpan] | None:
    return None if request.speech_spans is None else as_spans(request.speech_spans)


def _error(status: int, message: str, code: str, retry_after: int | None = None) -> JSONResponse:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return JSONResponse({"detail": message, "code": code}, status_code=status, headers=headers)
