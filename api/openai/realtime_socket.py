"""One Realtime transcription connection: the async shell around RealtimeMapper. It admits the
session like `/ws/transcribe` does (registry limits, metrics), starts the gateway's session
pipeline (api/session.py, stream mode) at the first audio, feeds it, scores the VAD at once for
server VAD turns, writes events in order, and applies the same limits: backpressure, a bounded
outbox, session duration and idle time, draining on shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable

import numpy as np
from pydantic import BaseModel
from starlette.websockets import WebSocket, WebSocketState

from api.connection import (
    BACKPRESSURE_POLL_SEC,
    CLOSE_GOING_AWAY,
    CLOSE_INTERNAL,
    CLOSE_NORMAL,
    CLOSE_POLICY,
    CLOSE_TRY_LATER,
)
from api.core.speech import CHUNK
from api.openai.realtime_config import RealtimeConfig
from api.openai.realtime_mapper import RealtimeMapper
from api.openai.realtime_wire import RealtimeError, client_error, new_id, server_error
from api.session import Session
from api.session_config import build_session_config
from contracts.events import StartMessage
from contracts.logs import get_logger

log = get_logger("api.realtime")
PAD_MARGIN_MS = 2 * CHUNK * 1000 // 16_000  # the VAD scores whole 32 ms chunks


class RealtimeConnection:
    def __init__(self, websocket: WebSocket, key: str, served: str, intent: bool) -> None:
        self.ws = websocket
        self.key = key
        self.state = websocket.app.state
        self.settings = self.state.settings
        self.metrics = self.state.metrics
        self.registry = self.state.registry
        self.id = new_id("sess")
        self.session: Session | None = None
        self.mapper = RealtimeMapper(
            self.id,
            RealtimeConfig(model=served),
            configured=intent,
            languages=self.settings.languages,
            max_append_bytes=self.settings.max_frame_bytes,
            pad_ms=self.settings.stream_commit_pause_ms + PAD_MARGIN_MS,
            vad_threshold=self.settings.vad_threshold,
            received=lambda: self.session.received if self.session is not None else 0,
        )
        self._outbox: asyncio.Queue[str | tuple[int, str]] = asyncio.Queue()
        self._closed = False
        self._ending = False  # a limit or a draining server finishes the session
        self._finishing: asyncio.Task[None] | None = None
        self.started_at = self.last_audio_at = time.monotonic()

    # ---- outgoing ----------------------------------------------------------------------------

    def emit(self, event: BaseModel) -> None:
        if self._closed:
            return
        if isinstance(event, RealtimeError):
            self.metrics.errors.labels(event.error.code or event.error.type).inc()
        if self._outbox.qsize() >= self.settings.max_outbox_events:
            # the client stopped reading: closing beats growing memory without bound
            while not self._outbox.empty():
                self._outbox.get_nowait()
            limit = self.settings.max_outbox_events
            self.emit(server_error("slow_consumer", f"more than {limit} events were not read"))
            self.close(CLOSE_POLICY, "slow consumer: events not read")
            return
        self._outbox.put_nowait(event.model_dump_json())

    def emit_all(self, events: Iterable[BaseModel]) -> None:
        for event in events:
            self.emit(event)

    def close(self, code: int, reason: str = "") -> None:
        if not self._closed:
            self._closed = True
            self._outbox.put_nowait((code, reason))

    async def _writer(self) -> None:
        while True:
            item = await self._outbox.get()
            if isinstance(item, tuple):
                if self.ws.application_state != WebSocketState.DISCONNECTED:
                    with contextlib.suppress(Exception):
                        await self.ws.close(*item)
                return
            try:
                await self.ws.send_text(item)
            except Exception:  # the client is gone: nothing more can reach it
                return

    # ---- the connection ----------------------------------------------------------------------

    async def serve(self) -> None:
        refusal = self.registry.admit(self.key)
        if refusal is not None:
            writer = asyncio.create_task(self._writer())
            self.emit(server_error("busy", f"{refusal}; retry later"))
            self.close(CLOSE_TRY_LATER, "busy")
            await writer
            return
        self.registry.opened(self.key)
        self.registry.connections.add(self)
        self.metrics.sessions.inc()
        self.metrics.active_sessions.inc()
        writer = asyncio.create_task(self._writer())
        watchdog = asyncio.create_task(self._watchdog())
        self.emit(self.mapper.created())
        log.info("realtime_session_open", session_id=self.id, key=self.key)
        try:
            await self._read()
        except Exception:
            log.exception("realtime_connection_failed", session_id=self.id)
            self.emit(server_error("internal", "internal error; the session is closed"))
            self.close(CLOSE_INTERNAL)
        finally:
            watchdog.cancel()
            self.registry.connections.discard(self)
            wait = 5.0
            if self._ending:  # a limit's or a drain's finish closes the socket when done
                wait += self.settings.shutdown_timeout_sec
                if self._finishing is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(self._finishing, timeout=wait)
            elif self.session is not None:
                with contextlib.suppress(Exception):
                    await self.session.cancel()
            self.close(CLOSE_NORMAL)
            try:
                await asyncio.wait_for(writer, timeout=wait)
            except TimeoutError:
                writer.cancel()
            self.registry.closed(self.key)
            self.metrics.active_sessions.dec()
            log.info("realtime_session_closed", session_id=self.id)

    async def _read(self) -> None:
        while not self._closed and not self._ending:
            await self._backpressure()
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect" or self._ending:
                return
            if message.get("text") is not None:
                await self._on_text(message["text"])
            elif message.get("bytes") is not None:
                note = "binary frames are not part of the Realtime API: send audio as JSON "
                self.emit(client_error("invalid_event", note + "input_audio_buffer.append"))

    async def _on_text(self, text: str) -> None:
        reaction = self.mapper.on_text(text)
        self.emit_all(reaction.events)
        if reaction.audio is None and reaction.pad is None:
            return
        session = self.session or self._start_pipeline()
        if reaction.audio is not None:
            self.last_audio_at = time.monotonic()
            session.feed(reaction.audio)
        if reaction.pad is not None:
            session.feed(reaction.pad)
        vad = session.vads[0]
        if vad is not None:  # score now: turns must not wait for the pipeline's next pass
            await vad.update(session.core.channels[0].track)

    def _start_pipeline(self) -> Session:
        config = self.mapper.config
        encoding, rate = config.edge
        start = StartMessage(
            event="start",
            mode="stream",
            language=config.language,
            prompt=config.prompt,
            hotwords=" ".join(config.keywords) or None,
            encoding=encoding,
            sample_rate=rate,
        )
        session = Session(
            build_session_config(start, self.settings),
            self.settings,
            self.state.pool,
            self.state.vad_model,
            self.metrics,
            self._on_pipeline,
            owner=self.key,
        )
        self.session = session
        if session.vads[0] is not None:
            session.vads[0].listeners.append(self._on_vad)
        session.start()
        return session

    def _on_pipeline(self, event: BaseModel) -> None:
        self.emit_all(self.mapper.on_pipeline(event))

    def _on_vad(self, first: int, probs: np.ndarray) -> None:
        self.emit_all(self.mapper.on_vad(first, probs))

    async def _backpressure(self) -> None:
        """Stop reading while too much audio waits: TCP then slows the client down."""
        while self.session is not None and self.session.at_buffer_limit:
            await asyncio.sleep(BACKPRESSURE_POLL_SEC)
            self.last_audio_at = time.monotonic()  # waiting on us is not idling

    async def _watchdog(self) -> None:
        """Session duration and idle limits: the session finishes in a task of its own (the
        connection's end waits for it; it must not die with the watchdog)."""
        while not self._ending:
            await asyncio.sleep(1.0)
            now = time.monotonic()
            if now - self.started_at > self.settings.max_session_sec:
                end = self._end("session_timeout", "the session reached its maximum duration")
            elif now - self.last_audio_at > self.settings.idle_timeout_sec:
                end = self._end("idle_timeout", "no audio received for too long")
            else:
                continue
            self._finishing = asyncio.create_task(end)
            return

    async def _end(self, code: str, message: str, close_code: int = CLOSE_NORMAL) -> None:
        """Finish: what was said is committed and completed, then the socket closes."""
        if self._ending:
            return
        self._ending = True
        if code:
            self.emit(server_error(code, message))
        self.emit_all(self.mapper.flush())
        if self.session is not None:
            await self.session.finish()
        self.close(close_code)

    async def drain(self) -> None:
        """Shutdown: finish the session, then close with 1001 (going away)."""
        await self._end("", "", CLOSE_GOING_AWAY)
