"""`POST /v1/audio/transcriptions`: OpenAI-compatible file transcription."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated

from fastapi import APIRouter, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from api.asr_client import WorkerError
from api.dependencies import CallerKey
from api.file_transcription import transcribe_file
from api.formats import ResponseFormat, to_srt, to_verbose_json, to_vtt
from asr.audio import SAMPLE_RATE, AudioDecodeError, decode_file
from asr.logs import get_logger
from asr.schemas import MAX_BEAM_SIZE, DecodeOptions

router = APIRouter()
log = get_logger("api.files")


@router.post("/v1/audio/transcriptions")
async def create_transcription(
    request: Request,
    key: CallerKey,
    file: Annotated[UploadFile, File()],
    model: Annotated[str, Form()] = "whisper-1",
    language: Annotated[str | None, Form()] = None,
    prompt: Annotated[str | None, Form(max_length=2000)] = None,
    temperature: Annotated[float | None, Form(ge=0.0, le=1.0)] = None,
    response_format: Annotated[ResponseFormat, Form()] = "json",
    timestamp_granularities: Annotated[
        list[str] | None, Form(alias="timestamp_granularities[]")
    ] = None,
    beam_size: Annotated[int, Form(ge=1, le=MAX_BEAM_SIZE)] = 5,
) -> Response:
    state = request.app.state
    settings = state.settings
    started = time.perf_counter()
    code = language.strip().lower() if language and language.strip() else None
    if code is not None and code not in settings.languages:
        raise HTTPException(
            422, f"language {language!r} is not allowed; allowed: {', '.join(settings.languages)}"
        )
    granularities = set(timestamp_granularities or [])
    if granularities - {"word", "segment"}:
        raise HTTPException(422, "timestamp_granularities[] takes 'word' and/or 'segment'")
    data = await file.read()
    if not data:
        raise HTTPException(400, "empty file: no audio bytes were sent")
    try:
        audio = await asyncio.to_thread(decode_file, data)
    except AudioDecodeError as exc:
        raise HTTPException(415, str(exc)) from exc
    if audio.size == 0:
        raise HTTPException(400, "cannot decode audio: no samples in the file")
    if audio.size / SAMPLE_RATE > settings.file_max_sec:
        raise HTTPException(
            413,
            f"audio is {audio.size / SAMPLE_RATE:.0f} s; the limit is {settings.file_max_sec:g} s",
        )
    options = DecodeOptions(
        language=code, beam_size=beam_size, temperature=temperature, initial_prompt=prompt
    )
    try:
        result = await transcribe_file(
            audio, options, state.asr, state.file_limiter, settings.file_piece_max_sec
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
        model=model,
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
