"""A WebSocket transcription session: configuration, channels, language, ordered events."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel

from api.asr_client import AsrClient
from api.audio_input import EdgeDecoder
from api.channel import Channel
from api.config import GatewaySettings
from api.events import AckEvent, EndEvent, PartialEvent, ReadyEvent, Span, TranscriptEvent
from api.insights import InsightsTracker, make_tracker
from api.metrics import GatewayMetrics
from api.partials import run_partials
from api.pipeline import BatchPipeline
from api.session_config import SessionConfig
from api.stream_pipeline import StreamPipeline
from asr.audio import SAMPLE_RATE
from asr.logs import get_logger
from asr.schemas import TranscriptionResponse

log = get_logger("api.session")

Emit = Callable[[BaseModel], None]  # enqueue an event for the client, in order
REPLAY_LIMIT = 1000  # transcripts kept to replay after a resume


class Session:
    def __init__(
        self,
        config: SessionConfig,
        settings: GatewaySettings,
        asr: AsrClient,
        metrics: GatewayMetrics,
        emit: Emit | None,
        owner: str = "anonymous",
        timeline_offset: int = 0,
        context_samples: int = 0,
        context_word_starts: Sequence[int] = (),
    ) -> None:
        self.id = uuid.uuid4().hex
        self.owner = owner
        self.config = config
        self.settings = settings
        self.asr = asr
        self.metrics = metrics
        self._emit = emit
        self._held: list[BaseModel] = []  # events produced while no client is attached
        self._sent_transcripts: deque[TranscriptEvent] = deque(maxlen=REPLAY_LIMIT)
        self.language = config.language
        self.started_at = time.monotonic()
        self.last_audio_at = self.started_at
        self.finished = False
        self.finished_hard = False  # cancelled: stop waiting for workers
        self.decoder = EdgeDecoder(config.encoding, config.sample_rate, config.channels)
        kind = StreamPipeline if config.mode == "stream" else BatchPipeline
        self.pipelines: list[Channel] = [
            kind(self, c, timeline_offset, context_samples, context_word_starts)
            for c in range(config.channels)
        ]
        self.failed_spans: list[Span] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._partial_tasks: list[asyncio.Task[None]] = []
        self._segments = 0
        self._words = 0
        self._texts: list[str] = []
        self._last_ack_offset = timeline_offset
        self.insights: InsightsTracker | None = (
            make_tracker(
                self.id,
                config.channels,
                config.provider,
                settings,
                self.emit,
                self._lang,
                timeline_offset,
                audio_start=timeline_offset - context_samples,
            )
            if config.enable_insights
            else None
        )
        if self.insights is not None:
            self.insights.listen([p.vad for p in self.pipelines])

    # ---- lifecycle -------------------------------------------------------------------------

    def ready_event(self, version: str) -> ReadyEvent:
        return ReadyEvent(
            session_id=self.id,
            version=version,
            config=self.config.public(),
            config_sources=self.config.sources(),
            warnings=self.config.warnings,
        )

    def start(self) -> None:
        batch = self.config.batch
        log.info(
            "batch_stream_start",
            session_id=self.id,
            batch_window=batch.batch_window_sec,
            max_batch_window=batch.max_batch_window_sec,
            beam_size=batch.beam_size,
            best_of=batch.best_of,
            language=self.language,
            profile=self.config.profile,
            mode=self.config.mode,
            channels=self.config.channels,
            sources=batch.sources,
        )
        self._tasks = [
            asyncio.create_task(p.run(), name=f"{self.id}-ch{p.channel}") for p in self.pipelines
        ]
        if self.config.partials:
            self._partial_tasks = [
                asyncio.create_task(run_partials(p), name=f"{self.id}-partials{p.channel}")
                for p in self.pipelines
            ]
        if self.insights is not None:
            self.insights.start()

    def feed(self, data: bytes) -> None:
        arrival = time.monotonic()
        self.last_audio_at = arrival
        channels = self.decoder.feed(data)
        self._push(channels, arrival)

    def attach(self, emit: Emit) -> None:
        """A client (again): events held while nobody listened are sent now."""
        self._emit = emit
        held, self._held = self._held, []
        for event in held:
            emit(event)

    def detach(self) -> None:
        self._emit = None

    def replay_after(self, segment_id: int) -> list[TranscriptEvent]:
        """Transcripts the client may have missed when its connection dropped."""
        held = {e.segment_id for e in self._held if isinstance(e, TranscriptEvent)}
        return [
            e
            for e in self._sent_transcripts
            if e.segment_id > segment_id and e.segment_id not in held
        ]

    @property
    def pending_sec(self) -> float:
        """Audio received but not yet final: what backpressure watches."""
        # (negative while a new session's context arrives: none of it waits to be transcribed)
        pending = max(p.track.received - p.committed_offset for p in self.pipelines)
        return max(0, pending) / SAMPLE_RATE

    @property
    def buffer_limit_sec(self) -> float:
        # never below a full window plus a held-back word, or a session could wait for audio
        # that backpressure keeps unread
        return max(self.settings.max_buffered_sec, self.config.batch.max_batch_window_sec + 2.0)

    @property
    def at_buffer_limit(self) -> bool:
        return self.pending_sec >= self.buffer_limit_sec

    async def finish(self) -> EndEvent:
        """Flush: transcribe everything received, then the `end` event (already sent)."""
        if self.finished:
            return EndEvent(session_id=self.id, summary=self.summary())
        self.finished = True
        self._push(self.decoder.flush(), time.monotonic())
        for pipeline in self.pipelines:
            pipeline.finish()
        for task in self._partial_tasks:
            task.cancel()
        await asyncio.gather(*self._tasks)
        await asyncio.gather(*self._partial_tasks, return_exceptions=True)
        if self.insights is not None:
            await self.insights.finish()  # the final insights, before `end`
        end = EndEvent(session_id=self.id, summary=self.summary())
        self.emit(end)
        log.info("session_end", session_id=self.id, **end.summary)
        self.release()
        return end

    async def cancel(self) -> None:
        self.finished_hard = True
        tasks = self._tasks + self._partial_tasks
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.insights is not None:
            await self.insights.cancel()
        log.info("session_cancelled", session_id=self.id, received_sec=self.received_sec)
        self.release()

    def release(self) -> None:
        """Free the audio as soon as the session is over. A session, its pipelines, tasks and
        the server's WebSocket objects form reference cycles, so only the garbage collector
        frees them, and its full passes grow rare as the heap grows: measured, every finished
        session's buffers (~0.4-2 MB) stayed resident until one ran (+10 MB per 16 sessions of
        30 s against a stub worker)."""
        for pipeline in self.pipelines:
            pipeline.release()

    # ---- used by the pipelines ---------------------------------------------------------------

    def emit(self, event: BaseModel) -> None:
        if isinstance(event, TranscriptEvent):
            self._sent_transcripts.append(event)
            if self.insights is not None:
                self.insights.add_transcript(event)
        if self._emit is None:
            if not isinstance(event, AckEvent | PartialEvent):  # stale by the time anyone looks
                self._held.append(event)
            return
        self._emit(event)

    def _lang(self) -> str | None:
        return self.language

    def next_segment_id(self) -> int:
        self._segments += 1
        return self._segments - 1

    def add_transcript(self, text: str, words: int) -> None:
        self._texts.append(text)
        self._words += words

    def observe_language(self, result: TranscriptionResponse) -> None:
        """Keep the first language detected on enough speech for the rest of the session."""
        if self.language is None and result.speech_sec >= self.settings.language_lock_speech_sec:
            self.language = result.language
            log.info("language_locked", session_id=self.id, language=self.language)

    def send_ack(self) -> None:
        self.emit(AckEvent(received_offset=self.received, committed_offset=self.committed))

    # ---- figures -----------------------------------------------------------------------------

    @property
    def received(self) -> int:
        return min(p.track.received for p in self.pipelines)

    @property
    def committed(self) -> int:
        return min(p.committed_offset for p in self.pipelines)

    @property
    def received_sec(self) -> float:
        return round(self.received / SAMPLE_RATE, 3)

    def transcript(self) -> dict[str, Any]:
        """The finished session, for GET /v1/sessions/{id}/transcript."""
        return {
            "session_id": self.id,
            "text": " ".join(self._texts),
            "segments": [e.model_dump() for e in self._sent_transcripts],
            "summary": self.summary(),
        }

    def summary(self) -> dict[str, Any]:
        return {
            "audio_sec": self.received_sec,
            "transcribed_sec": round(self.committed / SAMPLE_RATE, 3),
            "windows": sum(p.windows for p in self.pipelines),
            "segments": self._segments,
            "words": self._words,
            "language": self.language,
            "failed_spans": [s.model_dump() for s in self.failed_spans],
            "text": " ".join(self._texts),
            "wall_sec": round(time.monotonic() - self.started_at, 3),
        }

    def _push(self, channels: list[Any], arrival: float) -> None:
        received = 0
        for pipeline, samples in zip(self.pipelines, channels, strict=True):
            pipeline.push(samples, arrival)
            received = samples.size
        if received:
            self.metrics.audio.labels("received").inc(received / SAMPLE_RATE)
            if self.insights is not None:
                self.insights.push(channels)
        if self.received - self._last_ack_offset >= self.settings.ack_interval_sec * SAMPLE_RATE:
            self._last_ack_offset = self.received
            self.send_ack()
