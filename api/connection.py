"""One WebSocket connection: parse client messages, drive its session, write events in order."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from pydantic import BaseModel, ValidationError
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from api.events import (
    ErrorCode,
    ErrorEvent,
    KeepaliveMessage,
    StartMessage,
    StopMessage,
    client_message,
)
from api.session import Session
from api.session_config import ConfigError, build_session_config
from asr.logs import get_logger

log = get_logger("api.connection")

CLOSE_NORMAL = 1000
CLOSE_TOO_BIG = 1009
CLOSE_INTERNAL = 1011


class _Close:
    def __init__(self, code: int, reason: str = "") -> None:
        self.code = code
        self.reason = reason


class Connection:
    def __init__(self, websocket: WebSocket) -> None:
        self.ws = websocket
        self.state = websocket.app.state
        self.settings = self.state.settings
        self.metrics = self.state.metrics
        self.session: Session | None = None
        self._outbox: asyncio.Queue[str | _Close] = asyncio.Queue()
        self._closed = False

    # ---- outgoing ----------------------------------------------------------------------------

    def emit(self, event: BaseModel) -> None:
        if not self._closed:
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
        try:
            while not self._closed:
                message = await self.ws.receive()
                if message["type"] == "websocket.disconnect":
                    break
                if message.get("bytes") is not None:
                    self._on_audio(message["bytes"])
                elif message.get("text") is not None:
                    await self._on_text(message["text"])
        except WebSocketDisconnect:
            pass
        except Exception:
            log.exception("connection_failed")
            self.error(ErrorCode.internal, "internal error; the session is closed", fatal=True)
            self.close(CLOSE_INTERNAL)
        finally:
            await self._release()
            if not self._closed:
                self._closed = True
                self._outbox.put_nowait(_Close(CLOSE_NORMAL))
            try:
                await asyncio.wait_for(writer, timeout=5)
            except (TimeoutError, WebSocketDisconnect, RuntimeError):
                writer.cancel()

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
            await self._on_stop()
        elif isinstance(message, KeepaliveMessage):
            pass

    def _on_start(self, start: StartMessage) -> None:
        if self.session is not None:
            self.error(ErrorCode.already_started, "this session has already started")
            return
        try:
            config = build_session_config(start, self.settings)
        except ConfigError as exc:
            self.error(ErrorCode.invalid_config, str(exc))
            return
        session = Session(config, self.settings, self.state.asr, self.metrics, self.emit)
        self.session = session
        self.metrics.sessions.inc()
        self.metrics.active_sessions.inc()
        self.emit(session.ready_event(self.state.version))
        session.start()

    async def _on_stop(self) -> None:
        if self.session is None:
            self.error(ErrorCode.not_started, "nothing to stop: the session has not started")
            return
        session, self.session = self.session, None
        try:
            await session.finish()
        finally:
            self.metrics.active_sessions.dec()
        self.close(CLOSE_NORMAL)

    async def _release(self) -> None:
        """The client went away without `stop`: free the session (after the grace period)."""
        if self.session is None:
            return
        session, self.session = self.session, None
        if self.settings.disconnect_grace_sec:
            await asyncio.sleep(self.settings.disconnect_grace_sec)
        await session.cancel()
        self.metrics.active_sessions.dec()


def _explain(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors()[:5]:
        where = ".".join(str(part) for part in error["loc"] if part not in ("start",))
        problems.append(f"{where or 'message'}: {error['msg']}")
    return "invalid start: " + "; ".join(problems)
