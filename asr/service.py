"""What a transcription request goes through, whatever the transport: decode, check, queue, run."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from asr.audio import SAMPLE_RATE, AudioDecodeError, decode_file, decode_pcm_s16le
from asr.batch_decode import N_FRAMES
from asr.batcher import Done, MicroBatcher
from asr.config import WorkerSettings
from asr.logs import get_logger
from asr.metrics import WorkerMetrics
from asr.model import SpeechModel
from asr.scheduler import PriorityScheduler, QueueFull
from asr.schemas import DecodeOptions, Priority, TranscriptionResponse

log = get_logger(__name__)

MAX_BATCHED_SAMPLES = N_FRAMES * SAMPLE_RATE // 100  # one 30 s encoder input, no seeking
Payload = tuple[np.ndarray, DecodeOptions]


def batch_key(samples: int, options: DecodeOptions, priority: Priority) -> str | None:
    """Requests with equal keys can share a model call; None: this one takes the unbatched
    path (partials: the draft pass; no language: detection; temperature other than 0.0: the
    fallback ladder or sampling; vad_filter; over 30 s: faster-whisper's seeking)."""
    if (
        priority is Priority.partial
        or options.language is None
        or options.temperature != 0.0
        or options.vad_filter
        or samples > MAX_BATCHED_SAMPLES
    ):
        return None
    return f"{priority.name}|{options.model_dump_json()}"


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
        self._partial_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="partial")
        self._partial_busy = False
        self._model: SpeechModel | None = None
        self.batcher: MicroBatcher[Payload, TranscriptionResponse] | None = None
        if settings.resolved_batching:
            self.batcher = MicroBatcher(
                self.scheduler,
                self._run_batch,
                settings.max_batch,
                settings.batch_wait_ms / 1000,
                on_batch=self._observe_batch,
            )
        log.info(
            "batching",
            enabled=settings.resolved_batching,
            max_batch=settings.max_batch,
            wait_ms=settings.batch_wait_ms,
            pack=settings.pack,
            pack_gap_sec=settings.pack_gap_sec,
            pack_max_windows=settings.pack_max_windows,
        )

    @property
    def model(self) -> SpeechModel | None:
        return self._model

    @model.setter
    def model(self, model: SpeechModel | None) -> None:
        self._model = model
        if model is not None:
            model.batch_decoder.on_redo = self.metrics.pack_redone.inc

    def _run_batch(self, payloads: list[Payload]) -> list[TranscriptionResponse | Exception]:
        """On a model thread; every payload of a batch has the same options (its key)."""
        assert self._model is not None
        return self._model.transcribe_batch([audio for audio, _ in payloads], payloads[0][1])

    def _observe_batch(self, size: int, wait_sec: float) -> None:
        self.metrics.batch_size.observe(size)
        self.metrics.batch_wait.observe(wait_sec)

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
        key = batch_key(audio.size, options, priority) if self.batcher else None
        queued = time.perf_counter()
        self.metrics.in_flight.inc()
        try:
            if key is not None and self.batcher is not None:
                done = await self.batcher.submit(key, priority, (audio, options))
            else:
                done = await self._unbatched(audio, options, priority, queued)
        finally:
            self.metrics.in_flight.dec()
            self.metrics.waiting.set(self.scheduler.waiting)
        result = done.result
        if key is not None:
            self.metrics.queue.labels(priority.name).observe(done.queue_sec)
        self.metrics.inference.observe(result.timing.inference_ms / 1000)
        self.metrics.audio.inc(result.duration_sec)
        result.timing.queue_ms = round(done.queue_sec * 1000, 2)
        result.timing.batch_size = done.batch_size
        result.timing.batch_wait_ms = round(done.wait_sec * 1000, 2)
        return result

    async def _partial(
        self, audio: np.ndarray, options: DecodeOptions, queued: float
    ) -> Done[TranscriptionResponse]:
        """The partial lane: one draft at a time beside the finals, never queued (a partial that
        would wait is stale by the time it runs)."""
        assert self._model is not None
        if self._partial_busy:
            raise QueueFull("partial turned away: the partial lane is busy")
        self._partial_busy = True
        try:
            queue_sec = time.perf_counter() - queued
            loop = asyncio.get_running_loop()
            result = await loop.run_in_executor(
                self._partial_executor, self._model.draft, audio, options
            )
        finally:
            self._partial_busy = False
        return Done(result, queue_sec, 1, 0.0)

    async def _unbatched(
        self, audio: np.ndarray, options: DecodeOptions, priority: Priority, queued: float
    ) -> Done[TranscriptionResponse]:
        assert self._model is not None
        if priority is Priority.partial and self.settings.partial_lane:
            return await self._partial(audio, options, queued)
        self.metrics.waiting.set(self.scheduler.waiting)
        async with self.scheduler.slot(priority):
            queue_sec = time.perf_counter() - queued
            self.metrics.waiting.set(self.scheduler.waiting)
            self.metrics.queue.labels(priority.name).observe(queue_sec)
            run = self._model.draft if priority is Priority.partial else self._model.transcribe
            result = await self.scheduler.execute(run, audio, options)
        return Done(result, queue_sec, 1, 0.0)
