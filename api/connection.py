"""One WebSocket connection: admit it, parse client messages, drive its session (new or
resumed), write events in order, and enforce the per-connection limits."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

from pydantic import BaseModel, ValidationError
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from api.session import Session
from api.session_config import ConfigError, build_session_config
from contracts.events import (
    ErrorCode,
    ErrorEvent,
    KeepaliveMessage,
    StartMessage,
    StopMessage,
    client_message,
)
from contracts.logs import get_logger

log = get_logger("api.connection")

CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009
CLOSE_INTERNAL = 1011
CLOSE_TRY_LATER = 1013
BACKPRESSURE_POLL_SEC = 0.05


class _Close:
    def __init__(self, code: int, reason: str = "") -> None:
        self.code = code
        self.reason = reason


class Connection:
    def __init__(self, websocket: WebSocket, key_name: str) -> None:
        self.ws = websocket
        self.key = key_name
        self.state = websocket.app.state
        self.settings = self.state.settings
        self.metrics = self.state.metrics
        self.registry = self.state.registry
        self.session: Session | None = None
        self._outbox: asyncio.Queue[str | _Close] = asyncio.Queue()
        self._closed = False
        self._slow = False  # closed for not reading events: the session waits for a resume
        self._stopped = False  # the client sent stop, or the server ended the session

    # ---- outgoing ----------------------------------------------------------------------------

    def emit(self, event: BaseModel) -> None:
        if self._closed:
            return
        if self._outbox.qsize() >= self.settings.max_outbox_events:
            # the client stopped reading: closing beats growing memory without bound. What it
            # did not read is dropped; the session is parked, and a resume replays transcripts
            self._slow = True
            while not self._outbox.empty():
                self._outbox.get_nowait()
            limit = self.settings.max_outbox_events
            message = f"more than {limit} events were not read; resume the session to continue"
            self.error(ErrorCode.slow_consumer, message, fatal=True)
            self.close(CLOSE_POLICY, "slow consumer: events not read")
            return
        self._outbox.put_nowait(event.model_dump_json())

    def close(self, code: int, reason: str = "") -> None:
        if not self._closed:
            self._closed = True
            self._outbox.put_nowait(_Close(code, reason))

    def error(self, code: ErrorCode, message: str, fatal: bool = False, **extra: Any) -> None:
        self.metrics.errors.labels(code.value).inc()
        self.emit(ErrorEvent(code=code, message=message, fatal=fatal, **extra))

    async def _writer(self) -> None:
        while True:
            item = await self._outbox.get()
            if isinstance(item, _Close):
                if self.ws.application_state != WebSocketState.DISCONNECTED:
                    await self.ws.close(item.code, item.reason)
                return
            await self.ws.send_text(item)

    # ---- incoming ----------------------------------------------------------------------------

    async def serve(self) -> None:
        writer = asyncio.create_task(self._writer())
        watchdog = asyncio.create_task(self._watchdog())
        self.registry.connections.add(self)
        abnormal = True
        try:
            while not self._closed and not self._stopped:
                await self._backpressure()
                message = await self.ws.receive()
                if message["type"] == "websocket.disconnect":
                    abnormal = message.get("code", 1005) not in (CLOSE_NORMAL, CLOSE_GOING_AWAY)
                    break
                if self._stopped:
                    break  # the server is ending the session (shutdown): it sends `end` itself
                if message.get("bytes") is not None:
                    self._on_audio(message["bytes"])
                elif message.get("text") is not None:
                    await self._on_text(message["text"])
            else:
                abnormal = False
        except WebSocketDisconnect as exc:
            abnormal = exc.code not in (CLOSE_NORMAL, CLOSE_GOING_AWAY)
        except Exception:
            log.exception("connection_failed")
            self.error(ErrorCode.internal, "internal error; the session is closed", fatal=True)
            self.close(CLOSE_INTERNAL)
        finally:
            watchdog.cancel()
            self.registry.connections.discard(self)
            # a stop (the client's, a limit's or a draining server's) finishes the session and
            # closes the socket itself, maybe still now, in another task: only wait for it
            wait = 5.0
            if self._stopped:
                wait += self.settings.shutdown_timeout_sec
            else:
                await self._release(abnormal or self._slow)
                if not self._closed:
                    self._closed = True
                    self._outbox.put_nowait(_Close(CLOSE_NORMAL))
            try:
                await asyncio.wait_for(writer, timeout=wait)
            except (TimeoutError, WebSocketDisconnect, RuntimeError):
                writer.cancel()

    async def _backpressure(self) -> None:
        """Stop reading the socket while too much audio waits: TCP then slows the client down
        instead of the gateway's memory growing."""
        while self.session is not None and self.session.at_buffer_limit:
            await asyncio.sleep(BACKPRESSURE_POLL_SEC)  # a short poll: simpler than an Event
            self.session.last_audio_at = time.monotonic()  # waiting on us is not idling

    async def _watchdog(self) -> None:
        """Session duration and idle limits."""
        while True:
            await asyncio.sleep(1.0)
            session = self.session
            if session is None or self._stopped:
                continue
            now = time.monotonic()
            if now - session.started_at > self.settings.max_session_sec:
                await self._end(
                    ErrorCode.session_timeout, "the session reached its maximum duration"
                )
            elif now - session.last_audio_at > self.settings.idle_timeout_sec:
                await self._end(ErrorCode.idle_timeout, "no audio received for too long")

    async def _end(self, code: ErrorCode, message: str) -> None:
        self.error(code, message, fatal=True)
        await self._stop_session(CLOSE_NORMAL)

    def _on_audio(self, data: bytes) -> None:
        if len(data) > self.settings.max_frame_bytes:
            self.error(
                ErrorCode.frame_too_large,
                f"audio frame of {len(data)} bytes; the limit is {self.settings.max_frame_bytes}",
                fatal=True,
            )
            self.close(CLOSE_TOO_BIG, "frame too large")
            return
        if self.session is None:
            self.error(ErrorCode.not_started, 'send {"event":"start"} before audio')
            return
        self.session.feed(data)

    async def _on_text(self, text: str) -> None:
        try:
            payload = json.loads(text)
        except ValueError:
            self.error(ErrorCode.bad_message, "text frames must be JSON objects")
            return
        if not isinstance(payload, dict) or not isinstance(payload.get("event"), str):
            self.error(ErrorCode.bad_message, 'a message is a JSON object with an "event" field')
            return
        if payload["event"] not in ("start", "stop", "keepalive"):
            self.error(ErrorCode.bad_message, f"unknown event {payload['event']!r}")
            return
        try:
            message = client_message.validate_python(payload)
        except ValidationError as exc:
            self.error(ErrorCode.invalid_config, _explain(exc))
            return
        if isinstance(message, StartMessage):
            self._on_start(message)
        elif isinstance(message, StopMessage):
            if self.session is None:
                self.error(ErrorCode.not_started, "nothing to stop: the session has not started")
                return
            await self._stop_session(CLOSE_NORMAL)
        elif isinstance(message, KeepaliveMessage):
            pass

    def _on_start(self, start: StartMessage) -> None:
        if self.session is not None:
            self.error(ErrorCode.already_started, "this session has already started")
            return
        if start.resume is not None:
            self._resume(start)
            return
        refusal = self.registry.admit(self.key)
        if refusal is not None:
            self.error(ErrorCode.busy, refusal, fatal=True, retry_after_sec=5.0)
            self.close(CLOSE_TRY_LATER, "busy")
            return
        try:
            config = build_session_config(start, self.settings)
        except ConfigError as exc:
            self.error(ErrorCode.invalid_config, str(exc))
            return
        session = Session(
            config,
            self.settings,
            self.state.pool,
            self.state.vad_model,
            self.metrics,
            self.emit,
            owner=self.key,
            timeline_offset=start.timeline_offset,
            context_samples=start.context_samples,
            context_word_starts=start.context_word_starts,
        )
        self._adopt(session)
        self.emit(session.ready_event(self.state.version))
        session.start()

    def _resume(self, start: StartMessage) -> None:
        assert start.resume is not None
        session = self.registry.unpark(start.resume.session_id, self.key)
        if session is None:
            self.error(
                ErrorCode.resume_unknown,
                "this gateway does not know that session (it may have restarted): start a new "
                "session with timeline_offset = your committed_offset and send audio from there "
                "(or from up to context_samples before it, as context)",
            )
            return
        self._adopt(session)
        ready = session.ready_event(self.state.version).model_copy(
            update={
                "resumed": True,
                "received_offset": session.received,
                "committed_offset": session.committed,
            }
        )
        self.emit(ready)
        for event in session.replay_after(start.resume.last_segment_id):
            self.emit(event)
        session.attach(self.emit)
        log.info("session_resumed", session_id=session.id, received=session.received)

    def _adopt(self, session: Session) -> None:
        self.session = session
        self.registry.opened(self.key)
        self.metrics.sessions.inc()
        self.metrics.active_sessions.inc()

    def _disown(self) -> Session | None:
        session, self.session = self.session, None
        if session is not None:
            self.registry.closed(self.key)
            self.metrics.active_sessions.dec()
        return session

    async def _stop_session(self, close_code: int) -> None:
        """Flush the session (its `end` is sent), then close."""
        self._stopped = True
        session = self.session
        if session is not None:
            try:
                await session.finish()
            finally:
                self._disown()
                self.registry.store(session)
        self.close(close_code)

    async def drain(self) -> None:
        """Shutdown: finish the session, send `end`, close with 1001 (going away)."""
        await self._stop_session(CLOSE_GOING_AWAY)

    async def _release(self, abnormal: bool) -> None:
        """The client went away without `stop`: park the session for a resume, else free it."""
        session = self._disown()
        if session is None:
            return
        session.detach()
        grace = self.settings.resume_grace_sec
        if abnormal and grace > 0 and not self.registry.draining:
            self.registry.park(session, grace)
            return
        if self.settings.disconnect_grace_sec:
            await asyncio.sleep(self.settings.disconnect_grace_sec)
        with contextlib.suppress(Exception):
            await session.cancel()


def _explain(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors()[:5]:
        where = ".".join(str(part) for part in error["loc"] if part not in ("start",))
        problems.append(f"{where or 'message'}: {error['msg']}")
    return "invalid start: " + "; ".join(problems)
