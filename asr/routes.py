"""HTTP and WebSocket endpoints of the worker."""

from __future__ import annotations

import json
import time
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile, WebSocket
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError
from starlette.websockets import WebSocketDisconnect

from asr.audio import SAMPLE_RATE, pcm16_to_float
from asr.logs import get_logger
from asr.scheduler import QueueFull
from asr.schemas import MAX_BEAM_SIZE, DecodeOptions, Priority, ReadyResponse, TranscriptionResponse
from asr.service import RequestError, TranscriptionService

log = get_logger("asr.routes")
router = APIRouter()


def get_service(request: Request) -> TranscriptionService:
    return request.app.state.service


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
)
async def transcribe(
    request: Request,
    service: Service,
    file: Annotated[UploadFile, File(description="audio file, or raw PCM with format=pcm_s16le")],
    format: Annotated[Literal["auto", "pcm_s16le"], Form()] = "auto",
    sample_rate: Annotated[int, Form(ge=8000, le=48000)] = SAMPLE_RATE,
    beam_size: Annotated[int, Form(ge=1, le=MAX_BEAM_SIZE)] = 5,
    best_of: Annotated[int, Form(ge=1, le=MAX_BEAM_SIZE)] = 1,
    language: Annotated[str | None, Form()] = None,
    initial_prompt: Annotated[str | None, Form(max_length=2000)] = None,
    hotwords: Annotated[str | None, Form(max_length=2000)] = None,
    vad_filter: Annotated[bool, Form()] = False,
    word_timestamps: Annotated[bool, Form()] = True,
    temperature: Annotated[float | None, Form(ge=0.0, le=1.0)] = None,
    priority: Annotated[Literal["final", "partial", "file"], Form()] = "final",
) -> Response:
    started = time.perf_counter()
    status, result, error = 200, None, None
    try:
        options = DecodeOptions(
            language=service.check_language(language),
            beam_size=beam_size,
            best_of=best_of,
            temperature=temperature,
            initial_prompt=initial_prompt,
            hotwords=hotwords,
            vad_filter=vad_filter,
            word_timestamps=word_timestamps,
        )
        data = await file.read()
        audio = await service.decode(data, format, sample_rate)
        decode_ms = (time.perf_counter() - started) * 1000
        result = await service.transcribe(audio, options, Priority[priority])
        result.timing.decode_ms = round(decode_ms, 2)
        return JSONResponse(result.model_dump())
    except RequestError as exc:
        status, error = exc.status, exc.message
        headers = {"Retry-After": str(service.settings.retry_after_sec)} if status == 503 else None
        return JSONResponse(
            {"detail": exc.message, "code": exc.code}, status_code=exc.status, headers=headers
        )
    except QueueFull as exc:
        status, error = 503, str(exc)
        retry = str(service.settings.retry_after_sec)
        return JSONResponse(
            {"detail": f"worker busy: {exc}", "code": "busy"},
            status_code=503,
            headers={"Retry-After": retry},
        )
    finally:
        service.metrics.requests.labels("transcribe", str(status)).inc()
        log.info(
            "transcribe",
            status=status,
            error=error,
            priority=priority,
            audio_sec=round(result.duration_sec, 3) if result else None,
            language=result.language if result else language,
            queue_ms=result.timing.queue_ms if result else None,
            inference_ms=result.timing.inference_ms if result else None,
            total_ms=round((time.perf_counter() - started) * 1000, 2),
        )


@router.websocket("/ws")
async def stream(websocket: WebSocket) -> None:
    """Direct single-stream mode: PCM16 frames in, one transcription of all of it on `stop`."""
    service: TranscriptionService = websocket.app.state.service
    await websocket.accept()
    buffer = bytearray()
    max_bytes = int(service.settings.max_audio_sec * SAMPLE_RATE) * 2
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("bytes") is not None:
                buffer += message["bytes"]
                if len(buffer) > max_bytes:
                    await websocket.send_json(
                        {"event": "error", "code": "too_long", "message": "audio over the limit"}
                    )
                    await websocket.close(code=1009)
                    return
                continue
            try:
                event = json.loads(message.get("text") or "")
                if not isinstance(event, dict) or event.get("event") != "stop":
                    raise ValueError('expected {"event": "stop", ...}')
                options = DecodeOptions(
                    language=service.check_language(event.get("language")),
                    beam_size=event.get("beam_size", 5),
                    best_of=event.get("best_of", 1),
                )
            except (ValueError, ValidationError, RequestError) as exc:
                await websocket.send_json(
                    {"event": "error", "code": "bad_message", "message": str(exc)}
                )
                continue
            usable = len(buffer) - len(buffer) % 2
            result = await service.transcribe(
                pcm16_to_float(bytes(buffer[:usable])), options, Priority.final
            )
            service.metrics.requests.labels("ws", "200").inc()
            await websocket.send_json({"event": "result", **result.model_dump()})
            await websocket.close(code=1000)
            return
    except WebSocketDisconnect:
        return
    except QueueFull as exc:
        await websocket.send_json({"event": "error", "code": "busy", "message": str(exc)})
        await websocket.close(code=1013)
