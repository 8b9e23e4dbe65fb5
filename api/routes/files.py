"""`POST /v1/audio/transcriptions`: OpenAI-compatible file transcription."""

from __future__ import annotations

import asyncio
import time
from typing import Any, get_args

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.datastructures import UploadFile

from api.dependencies import CallerKey
from api.file_decode import decode_file
from api.file_transcription import file_speech, transcribe_file
from api.formats import ResponseFormat, to_srt, to_verbose_json, to_vtt
from api.pool import WorkerError
from contracts.audio import AudioRejected, check_duration, require_bytes
from contracts.logs import get_logger
from contracts.worker import MAX_BEAM_SIZE, FormError, options_from_form

router = APIRouter()
log = get_logger("api.files")

FORM_SCHEMA: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
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
                        "beam_size": {"type": "integer", "minimum": 1, "maximum": MAX_BEAM_SIZE},
                    },
                }
            }
        },
    }
}


@router.post("/v1/audio/transcriptions", openapi_extra=FORM_SCHEMA)
async def create_transcription(request: Request, key: CallerKey) -> Response:
    state = request.app.state
    settings = state.settings
    started = time.perf_counter()
    async with request.form() as form:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise HTTPException(422, "file: a multipart field `file` holding the audio is required")
        fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
        granularities = set(form.getlist("timestamp_granularities[]"))
        data = await upload.read()
    response_format = fields.get("response_format", "json")
    if response_format not in get_args(ResponseFormat):
        formats = ", ".join(get_args(ResponseFormat))
        raise HTTPException(422, f"response_format: {response_format!r} is not one of {formats}")
    if granularities - {"word", "segment"}:
        raise HTTPException(422, "timestamp_granularities[] takes 'word' and/or 'segment'")
    try:
        options = options_from_form(fields, settings.languages)
    except FormError as exc:
        raise HTTPException(422, exc.message) from exc
    try:
        require_bytes(data)
        audio = await asyncio.to_thread(decode_file, data)
        check_duration(audio.size, settings.file_max_sec)
    except AudioRejected as exc:
        raise HTTPException(exc.status, exc.message) from exc
    speech = (
        await asyncio.to_thread(file_speech, audio, state.vad_model, settings.vad_threshold)
        if state.vad_model is not None
        else None
    )
    try:
        result = await transcribe_file(
            audio,
            options,
            state.pool,
            state.file_limiter,
            speech,
            settings.languages[0],
            settings.file_piece_max_sec,
        )
    except WorkerError as exc:
        state.metrics.file_requests.labels("failed").inc()
        state.metrics.errors.labels("worker_failed").inc()
        raise HTTPException(502, f"the worker pool could not transcribe the file: {exc}") from exc
    state.metrics.file_requests.labels("ok").inc()
    state.metrics.audio.labels("transcribed").inc(result.duration_sec)
    log.info(
        "file_transcribed",
        audio_sec=result.duration_sec,
        model=fields.get("model", "whisper-1"),
        key=key,
        language=result.language,
        segments=len(result.segments),
        seconds=round(time.perf_counter() - started, 3),
    )
    if response_format == "text":
        return PlainTextResponse(result.text)
    if response_format == "srt":
        return PlainTextResponse(to_srt(result), media_type="application/x-subrip")
    if response_format == "vtt":
        return PlainTextResponse(to_vtt(result), media_type="text/vtt")
    if response_format == "verbose_json":
        return JSONResponse(to_verbose_json(result, granularities))
    return JSONResponse({"text": result.text})
