"""What a transcription request goes through, whatever the transport: decode, check, queue, run."""

from __future__ import annotations

import asyncio
import time

import numpy as np

from asr.audio import SAMPLE_RATE, AudioDecodeError, decode_file, decode_pcm_s16le
from asr.config import WorkerSettings
from asr.metrics import WorkerMetrics
from asr.model import SpeechModel
from asr.scheduler import PriorityScheduler
from asr.schemas import DecodeOptions, Priority, TranscriptionResponse


class RequestError(Exception):
    """A client mistake, with the HTTP status that names it."""

    def __init__(self, status: int, message: str, code: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


class TranscriptionService:
    def __init__(self, settings: WorkerSettings, metrics: WorkerMetrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.scheduler = PriorityScheduler(settings.concurrency, settings.queue_limit)
        self.model: SpeechModel | None = None

    def check_language(self, language: str | None) -> str | None:
        if language is None or language.strip().lower() in ("", "auto"):
            return None
        code = language.strip().lower()
        if code not in self.settings.languages:
            raise RequestError(
                422,
                f"language {language!r} is not allowed here; allowed: "
                f"{', '.join(self.settings.languages)} (or omit it to detect)",
                "invalid_language",
            )
        return code

    async def decode(self, data: bytes, audio_format: str, sample_rate: int) -> np.ndarray:
        if not data:
            raise RequestError(400, "empty file: no audio bytes were sent", "empty_audio")
        try:
            if audio_format == "pcm_s16le":
                audio = await asyncio.to_thread(decode_pcm_s16le, data, sample_rate)
            else:
                audio = await asyncio.to_thread(decode_file, data)
        except AudioDecodeError as exc:
            status = 400 if audio_format == "pcm_s16le" else 415
            raise RequestError(status, str(exc), "bad_audio") from exc
        if audio.size == 0:
            raise RequestError(400, "cannot decode audio: no samples in the file", "bad_audio")
        self.check_duration(audio.size)
        return audio

    def check_duration(self, samples: int) -> None:
        seconds = samples / SAMPLE_RATE
        if seconds > self.settings.max_audio_sec:
            raise RequestError(
                413,
                f"audio is {seconds:.1f} s long; the limit is {self.settings.max_audio_sec:g} s",
                "too_long",
            )

    async def transcribe(
        self, audio: np.ndarray, options: DecodeOptions, priority: Priority
    ) -> TranscriptionResponse:
        if self.model is None:
            raise RequestError(503, "the model is still loading; retry shortly", "not_ready")
        queued = time.perf_counter()
        self.metrics.waiting.set(self.scheduler.waiting)
        self.metrics.in_flight.inc()
        try:
            async with self.scheduler.slot(priority):
                queue_sec = time.perf_counter() - queued
                self.metrics.waiting.set(self.scheduler.waiting)
                self.metrics.queue.labels(priority.name).observe(queue_sec)
                run = self.model.draft if priority is Priority.partial else self.model.transcribe
                result = await self.scheduler.execute(run, audio, options)
        finally:
            self.metrics.in_flight.dec()
            self.metrics.waiting.set(self.scheduler.waiting)
        self.metrics.inference.observe(result.timing.inference_ms / 1000)
        self.metrics.audio.inc(result.duration_sec)
        result.timing.queue_ms = round(queue_sec * 1000, 2)
        return result
