"""`POST /v1/audio/transcriptions` and `POST /v1/audio/translations`: OpenAI-compatible file
transcription (and whisper's translation to English), whole or streamed (`stream=true`)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, replace
from typing import Any, get_args

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.datastructures import UploadFile

from api.dependencies import CallerKey
from api.file_decode import decode_file
from api.file_transcription import (
    FileResult,
    file_speech,
    transcribe_file,
    transcribe_pieces,
)
from api.formats import ResponseFormat, to_srt, to_verbose_json, to_vtt
from api.openai.errors import OpenAIHTTPError
from api.openai.file_stream import text_events, usage
from api.openai.models import resolve, served_model, unknown_model_message
from api.pool import WorkerError
from contracts.audio import AudioRejected, check_duration, require_bytes
from contracts.logs import get_logger
from contracts.worker import MAX_BEAM_SIZE, DecodeOptions, FormError, Task, options_from_form

router = APIRouter()
log = get_logger("api.files")
POOL_RETRY_AFTER_SEC = 5  # the pool was busy or down for its whole retry deadline


def form_schema(task: Task) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "file": {"type": "string", "format": "binary"},
        "model": {"type": "string", "default": "whisper-1"},
        "language": {"type": "string", "description": "ISO code; omit to detect"},
        "prompt": {"type": "string", "maxLength": 2000},
        "temperature": {"type": "number", "minimum": 0, "maximum": 1},
        "response_format": {
            "type": "string",
            "enum": list(get_args(ResponseFormat)),
            "default": "json",
        },
        "timestamp_granularities[]": {
            "type": "array",
            "items": {"type": "string", "enum": ["word", "segment"]},
        },
        "stream": {"type": "boolean", "default": False, "description": "server-sent events"},
        "beam_size": {"type": "integer", "minimum": 1, "maximum": MAX_BEAM_SIZE},
    }
    if task == "translate":
        properties["language"]["description"] = "the spoken language; omit to detect"
    content = {"schema": {"type": "object", "required": ["file"], "properties": properties}}
    return {"requestBody": {"required": True, "content": {"multipart/form-data": content}}}


@dataclass(frozen=True)
class FileRequest:
    data: bytes
    options: DecodeOptions
    response_format: str
    granularities: set[str]
    stream: bool
    model: str  # the one that runs


@router.post("/v1/audio/transcriptions", openapi_extra=form_schema("transcribe"))
async def create_transcription(request: Request, key: CallerKey) -> Response:
    return await _serve(request, key, "transcribe")


@router.post("/v1/audio/translations", openapi_extra=form_schema("translate"))
async def create_translation(request: Request, key: CallerKey) -> Response:
    return await _serve(request, key, "translate")


async def _read(request: Request, task: Task) -> FileRequest:
    settings = request.app.state.settings
    async with request.form() as form:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise OpenAIHTTPError(
                422, "file: a multipart field `file` holding the audio is required", param="file"
            )
        fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
        granularities = set(form.getlist("timestamp_granularities[]"))
        data = await upload.read()
    response_format = fields.get("response_format") or "json"
    if response_format not in get_args(ResponseFormat):
        formats = ", ".join(get_args(ResponseFormat))
        raise OpenAIHTTPError(
            422, f"response_format: {response_format!r} is not one of {formats}", "invalid_value"
        )
    if granularities - {"word", "segment"}:
        raise OpenAIHTTPError(
            422,
            "timestamp_granularities[]: takes 'word' and/or 'segment'",
            "invalid_value",
            "timestamp_granularities[]",
        )
    # the check above leaves only the strings "word" and "segment" (no uploaded file)
    granularities_asked = {g for g in granularities if isinstance(g, str)}
    stream = fields.get("stream", "false").strip().lower() in ("true", "1")
    if stream and response_format not in ("json", "text"):
        raise OpenAIHTTPError(
            400,
            f"stream: a stream carries text events; response_format {response_format!r} "
            "cannot be streamed (use json or text)",
            "invalid_value",
        )
    served = await served_model(request.app.state)
    if resolve(fields.get("model"), served) is None:
        message = unknown_model_message(fields["model"], served)
        raise OpenAIHTTPError(400, message, "model_not_found", "model")
    try:
        options = options_from_form(fields, settings.languages)
    except FormError as exc:
        raise OpenAIHTTPError(422, exc.message, exc.code) from exc
    options = options.model_copy(update={"task": task})
    return FileRequest(data, options, response_format, granularities_asked, stream, served)


async def _serve(request: Request, key: str, task: Task) -> Response:
    state = request.app.state
    settings = state.settings
    started = time.perf_counter()
    asked = await _read(request, task)
    try:
        require_bytes(asked.data)
        audio = await asyncio.to_thread(decode_file, asked.data)
        check_duration(audio.size, settings.file_max_sec)
    except AudioRejected as exc:
        raise OpenAIHTTPError(exc.status, exc.message, exc.code, "file") from exc
    speech = (
        await asyncio.to_thread(file_speech, audio, state.vad_model, settings.vad_threshold)
        if state.vad_model is not None
        else None
    )
    headers = {"x-model": asked.model}
    if asked.stream:
        pieces = transcribe_pieces(
            audio,
            asked.options,
            state.pool,
            state.file_limiter,
            speech,
            settings.file_piece_max_sec,
        )
        events = text_events(pieces, asked.model)
        # an NGINX in front (ingress-nginx) passes each event on at once, unbuffered
        headers.update({"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        return StreamingResponse(events, media_type="text/event-stream", headers=headers)
    try:
        result = await transcribe_file(
            audio,
            asked.options,
            state.pool,
            state.file_limiter,
            speech,
            settings.languages[0],
            settings.file_piece_max_sec,
        )
    except WorkerError as exc:
        state.metrics.file_requests.labels("failed").inc()
        state.metrics.errors.labels("worker_failed").inc()
        message = f"the worker pool could not transcribe the file: {exc}"
        if exc.retryable:  # busy or down past the retry deadline: worth trying again later
            retry = {"Retry-After": str(POOL_RETRY_AFTER_SEC)}
            raise OpenAIHTTPError(503, message, "overloaded", headers=retry) from exc
        raise OpenAIHTTPError(502, message, "worker_failed") from exc
    state.metrics.file_requests.labels("ok").inc()
    state.metrics.audio.labels("transcribed").inc(result.duration_sec)
    log.info(
        "file_transcribed",
        task=task,
        audio_sec=result.duration_sec,
        model=asked.model,
        key=key,
        language=result.language,
        segments=len(result.segments),
        seconds=round(time.perf_counter() - started, 3),
    )
    if task == "translate":
        result = replace(result, language="en")  # the text's language: whisper translates to it
    return _formatted(result, asked, task, headers)


def _formatted(
    result: FileResult, asked: FileRequest, task: Task, headers: dict[str, str]
) -> Response:
    if asked.response_format == "text":
        return PlainTextResponse(result.text, headers=headers)
    if asked.response_format == "srt":
        return PlainTextResponse(to_srt(result), media_type="application/x-subrip", headers=headers)
    if asked.response_format == "vtt":
        return PlainTextResponse(to_vtt(result), media_type="text/vtt", headers=headers)
    extra = {"usage": usage(result.duration_sec), "model": asked.model}
    if asked.response_format == "verbose_json":
        body = to_verbose_json(result, asked.granularities, task)
        return JSONResponse({**body, **extra}, headers=headers)
    return JSONResponse({"text": result.text, **extra}, headers=headers)
