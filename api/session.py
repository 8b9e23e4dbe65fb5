"""A WebSocket transcription session's async shell: decodes client audio at the edge, runs one
loop per channel (and its partials) around the session core, and delivers events in order to
whichever connection is attached (holding them while none is)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel

from api.audio_input import EdgeDecoder
from api.config import GatewaySettings
from api.core.session import SessionCore
from api.insights import InsightsTracker, make_tracker
from api.metrics import GatewayMetrics
from api.modes import run_channel, run_partials
from api.pool import PoolClient
from api.session_config import SessionConfig
from api.vad_model import SileroModel
from api.vad_stream import StreamingVad
from contracts.audio import SAMPLE_RATE
from contracts.events import AckEvent, EndEvent, PartialEvent, ReadyEvent, TranscriptEvent
from contracts.logs import get_logger

log = get_logger("api.session")

Emit = Callable[[BaseModel], None]  # enqueue an event for the client, in order


class Session:
    def __init__(
        self,
        config: SessionConfig,
        settings: GatewaySettings,
        pool: PoolClient,
        vad_model: SileroModel | None,
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
        self.pool = pool
        self.metrics = metrics
        self.core = SessionCore(
            self.id,
            config,
            settings,
            metrics,
            timeline_offset,
            context_samples,
            context_word_starts,
        )
        self._emit = emit
        self._held: list[BaseModel] = []  # events produced while no client is attached
        self.started_at = time.monotonic()
        self.last_audio_at = self.started_at
        self.finished = False
        self.decoder = EdgeDecoder(config.encoding, config.sample_rate, config.channels)
        self.vads = [
            StreamingVad(vad_model, c.speech) if vad_model is not None and c.speech else None
            for c in self.core.channels
        ]
        self.wakes = [asyncio.Event() for _ in self.core.channels]
        self._tasks: list[asyncio.Task[None]] = []
        self._partial_tasks: list[asyncio.Task[None]] = []
        self.insights: InsightsTracker | None = (
            make_tracker(
                self.id,
                config.channels,
                config.provider,
                settings,
                self.emit,
                lambda: self.core.ledger.language,
                timeline_offset,
                audio_start=timeline_offset - context_samples,
            )
            if config.enable_insights
            else None
        )
        if self.insights is not None:
            self.insights.listen(self.vads)

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
            language=self.config.language,
            profile=self.config.profile,
            mode=self.config.mode,
            channels=self.config.channels,
            sources=batch.sources,
        )
        self._tasks = [
            asyncio.create_task(run_channel(self, c), name=f"{self.id}-ch{c}")
            for c in range(self.config.channels)
        ]
        if self.config.partials:
            self._partial_tasks = [
                asyncio.create_task(run_partials(self, c), name=f"{self.id}-partials{c}")
                for c in range(self.config.channels)
            ]
        if self.insights is not None:
            self.insights.start()

    def feed(self, data: bytes) -> None:
        self.last_audio_at = time.monotonic()
        self._push(self.decoder.feed(data))

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
        return self.core.replay_after(segment_id, held)

    @property
    def at_buffer_limit(self) -> bool:
        return self.core.at_buffer_limit

    async def finish(self) -> EndEvent:
        """Flush: transcribe everything received, then the `end` event (already sent)."""
        if self.finished:
            return EndEvent(session_id=self.id, summary=self.summary())
        self.finished = True
        self._push(self.decoder.flush())
        self.core.finish()
        for wake in self.wakes:
            wake.set()
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
        tasks = self._tasks + self._partial_tasks
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.insights is not None:
            await self.insights.cancel()
        log.info("session_cancelled", session_id=self.id, received_sec=self.received_sec)
        self.release()

    def release(self) -> None:
        """Free the audio as soon as the session is over. A session, its tasks and the server's
        WebSocket objects form reference cycles, so only the garbage collector frees them, and
        its full passes grow rare as the heap grows: measured, every finished session's buffers
        (~0.4-2 MB) stayed resident until one ran (+10 MB per 16 sessions of 30 s against a
        stub worker)."""
        self.core.release()

    # ---- events out ----------------------------------------------------------------------

    def emit(self, event: BaseModel) -> None:
        if isinstance(event, TranscriptEvent) and self.insights is not None:
            self.insights.add_transcript(event)
        if self._emit is None:
            if not isinstance(event, AckEvent | PartialEvent):  # stale by the time anyone looks
                self._held.append(event)
            return
        self._emit(event)

    def _push(self, channels: list[Any]) -> None:
        for event in self.core.push(channels, time.monotonic()):
            self.emit(event)
        if channels and channels[0].size and self.insights is not None:
            self.insights.push(channels)
        for wake in self.wakes:
            wake.set()

    # ---- figures -----------------------------------------------------------------------------

    @property
    def received(self) -> int:
        return self.core.received

    @property
    def committed(self) -> int:
        return self.core.committed

    @property
    def received_sec(self) -> float:
        return round(self.received / SAMPLE_RATE, 3)

    def transcript(self) -> dict[str, Any]:
        return self.core.transcript(time.monotonic() - self.started_at)

    def summary(self) -> dict[str, Any]:
        return self.core.summary(time.monotonic() - self.started_at)
