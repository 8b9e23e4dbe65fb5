"""What a transcription request goes through, whatever the transport: decode, check, queue, run."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from asr import window_decode
from asr.audio import AudioDecodeError, decode_file, decode_pcm_s16le
from asr.batch_decode import N_FRAMES
from asr.batcher import Done, MicroBatcher
from asr.config import WorkerSettings
from asr.metrics import WorkerMetrics
from asr.model import SpeechModel
from asr.scheduler import PriorityScheduler, QueueFull
from asr.vad import SpeechSpan
from asr.window_decode import input_frames
from contracts.audio import SAMPLE_RATE, AudioRejected, check_duration, require_bytes
from contracts.logs import get_logger
from contracts.worker import DecodeOptions, Priority, TranscriptionResponse

log = get_logger(__name__)

MAX_BATCHED_SAMPLES = N_FRAMES * SAMPLE_RATE // 100  # one 30 s encoder input, no seeking
Spans = list[SpeechSpan] | None  # None: the worker's own VAD decides
Payload = tuple[np.ndarray, DecodeOptions, Spans]


def batch_key(samples: int, options: DecodeOptions, priority: Priority) -> str | None:
    """Requests with equal keys can share a model call; None: this one takes the unbatched
    path (partials: the draft pass; no language: detection; temperature other than 0.0: the
    fallback ladder or sampling; vad_filter; translation; over 30 s: faster-whisper's seeking)."""
    if (
        priority is Priority.partial
        or options.task != "transcribe"
        or options.language is None
        or options.temperature != 0.0
        or options.vad_filter
        or samples > MAX_BATCHED_SAMPLES
    ):
        return None
    if options.encoder_pad_sec is not None:
        if not window_decode.applies(options, samples):
            return None
        # live windows: each its own prefix and prompt; one encoder input length per batch
        shared = options.model_dump_json(exclude={"prefix", "initial_prompt"})
        return f"{priority.name}|window|{input_frames(samples, options.encoder_pad_sec)}|{shared}"
    return f"{priority.name}|{options.model_dump_json()}"


class NotReady(Exception):
    """The model is still loading (HTTP 503)."""


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
            model.on_call = lambda path, inputs: self.metrics.model_calls.labels(path).inc(inputs)

    def _run_batch(self, payloads: list[Payload]) -> list[TranscriptionResponse | Exception]:
        """On a model thread; the payloads of a batch share their key (batch_key)."""
        assert self._model is not None
        audios = [audio for audio, _, _ in payloads]
        options = [o for _, o, _ in payloads]
        return self._model.transcribe_batch(audios, options, [s for _, _, s in payloads])

    def _observe_batch(self, size: int, wait_sec: float) -> None:
        self.metrics.batch_size.observe(size)
        self.metrics.batch_wait.observe(wait_sec)

    async def decode(self, data: bytes, audio_format: str, sample_rate: int) -> np.ndarray:
        """16 kHz float32 samples; AudioRejected (400, 413, 415) says why not."""
        require_bytes(data)
        try:
            if audio_format == "pcm_s16le":
                audio = await asyncio.to_thread(decode_pcm_s16le, data, sample_rate)
            else:
                audio = await asyncio.to_thread(decode_file, data)
        except AudioDecodeError as exc:
            status = 400 if audio_format == "pcm_s16le" else 415
            raise AudioRejected(status, str(exc), "bad_audio") from exc
        check_duration(audio.size, self.settings.max_audio_sec)
        return audio

    async def transcribe(
        self, audio: np.ndarray, options: DecodeOptions, priority: Priority, spans: Spans = None
    ) -> TranscriptionResponse:
        if self.model is None:
            raise NotReady("the model is still loading; retry shortly")
        key = batch_key(audio.size, options, priority) if self.batcher else None
        queued = time.perf_counter()
        self.metrics.in_flight.inc()
        try:
            if key is not None and self.batcher is not None:
                done = await self.batcher.submit(key, priority, (audio, options, spans))
            else:
                done = await self._unbatched(audio, options, priority, spans, queued)
        finally:
            self.metrics.in_flight.dec()
            self.metrics.waiting.set(self.scheduler.waiting)
        result = done.result
        if key is not None:
            self.metrics.queue.labels(priority.name).observe(done.queue_sec)
        self.metrics.inference.observe(result.timing.inference_ms / 1000)
        self._observe_stages(result, done.batch_size)
        self.metrics.audio.inc(result.duration_sec)
        result.timing.queue_ms = round(done.queue_sec * 1000, 2)
        result.timing.batch_size = done.batch_size
        result.timing.batch_wait_ms = round(done.wait_sec * 1000, 2)
        return result

    def _observe_stages(self, result: TranscriptionResponse, batch_size: int) -> None:
        timing = result.timing
        if timing.inference_ms <= 0:
            return
        stages = {
            "features": timing.features_ms,
            "encoder": timing.encoder_ms,
            "decoder": timing.decoder_ms,
            "align": timing.align_ms,
        }
        if not any(stages.values()):
            return  # no model call (no speech)
        stages["other"] = max(0.0, timing.inference_ms / max(1, batch_size) - sum(stages.values()))
        for stage, ms in stages.items():
            self.metrics.stage.labels(stage).observe(ms / 1000)

    async def _partial(
        self, audio: np.ndarray, options: DecodeOptions, spans: Spans, queued: float
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
                self._partial_executor, self._model.draft, audio, options, spans
            )
        finally:
            self._partial_busy = False
        return Done(result, queue_sec, 1, 0.0)

    async def _unbatched(
        self,
        audio: np.ndarray,
        options: DecodeOptions,
        priority: Priority,
        spans: Spans,
        queued: float,
    ) -> Done[TranscriptionResponse]:
        assert self._model is not None
        if priority is Priority.partial and self.settings.partial_lane:
            return await self._partial(audio, options, spans, queued)
        self.metrics.waiting.set(self.scheduler.waiting)
        async with self.scheduler.slot(priority):
            queue_sec = time.perf_counter() - queued
            self.metrics.waiting.set(self.scheduler.waiting)
            self.metrics.queue.labels(priority.name).observe(queue_sec)
            run = self._model.draft if priority is Priority.partial else self._model.transcribe
            result = await self.scheduler.execute(run, audio, options, spans)
        return Done(result, queue_sec, 1, 0.0)
