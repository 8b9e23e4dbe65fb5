"""A streaming session that survives dropped connections and gateway restarts.

It keeps the audio from the last `committed_offset` on. When the connection drops it reconnects
(with backoff) and resumes the session; the gateway says from which offset it needs audio again.
When the gateway no longer knows the session (it restarted), or ends it before it has all the
audio (it is shutting down: `end`, then close 1001, as a Kubernetes pod that drains), a new
session continues the same timeline from the committed offset; the audio just before it (from a
word's start, at most CONTEXT_SEC) goes along as `context_samples`, so the model hears the new
session's first words as the lost session would have. No audio is lost and no transcript is
delivered twice.
Audio must be 16 kHz mono PCM16 here (offsets then map to bytes directly).
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Callable
from typing import Any

import websockets
from websockets.typing import Subprotocol

BYTES_PER_SAMPLE = 2
RATE = 16000
CONTEXT_SEC = 5.0  # as the gateway's default context_sec: audio kept before the committed offset
# refusals that a reconnect cannot cure
FATAL_FOR_GOOD = {"unauthorized", "forbidden_origin", "invalid_config", "frame_too_large"}


class ResilientStream:
    def __init__(
        self,
        url: str,
        start: dict[str, Any] | None = None,
        api_key: str | None = None,
        max_reconnects: int = 20,
        on_event: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.url = url
        self.start = {
            k: v for k, v in (start or {}).items() if k not in ("encoding", "sample_rate")
        }
        self.api_key = api_key
        self.max_reconnects = max_reconnects
        self.on_event = on_event
        self.events: list[dict[str, Any]] = []
        self.reconnects = 0
        self.sessions: list[str] = []
        self.starts_sent: list[dict[str, Any]] = []  # every start message, resumes included
        self._audio = bytearray()  # from self._base on
        self._base = 0  # sample offset of self._audio[0]
        self._produced = 0  # samples the source has produced
        self._source_done = False
        self._stop_sent = False  # in this session
        self._session_id: str | None = None
        self._committed = 0
        self._word_starts: deque[int] = deque()  # samples, of the words received lately
        self._last_segment = -1
        self._seen: set[tuple[str, int]] = set()
        self._more = asyncio.Event()
        self._ws: websockets.ClientConnection | None = None

    # ---- the audio source --------------------------------------------------------------------

    def feed(self, pcm16: bytes) -> None:
        self._audio += pcm16
        self._produced += len(pcm16) // BYTES_PER_SAMPLE
        self._more.set()

    def close_source(self) -> None:
        self._source_done = True
        self._more.set()

    async def play(self, pcm16: bytes, frame_ms: int = 300, realtime: bool = True) -> None:
        """Feed a recording as if it were live."""
        frame = 16 * frame_ms * BYTES_PER_SAMPLE
        loop = asyncio.get_running_loop()
        began = loop.time()
        for index, offset in enumerate(range(0, len(pcm16), frame)):
            if realtime:
                await asyncio.sleep(max(0.0, began + (index + 1) * frame_ms / 1000 - loop.time()))
            self.feed(pcm16[offset : offset + frame])
        self.close_source()

    # ---- the connection ----------------------------------------------------------------------

    async def run(self) -> list[dict[str, Any]]:
        """Until the session ended (its `end` event): every transcript exactly once, in order."""
        while True:
            try:
                if await self._connection():
                    return self.events
            except (OSError, websockets.ConnectionClosedError, websockets.InvalidStatus):
                pass  # dropped: reconnect and resume
            self.reconnects += 1
            if self.reconnects > self.max_reconnects:
                raise ConnectionError(f"gave up after {self.max_reconnects} reconnects")
            await asyncio.sleep(min(0.2 * 2 ** min(self.reconnects, 5), 3.0))

    async def _connection(self) -> bool:
        protocols = [Subprotocol("asr.v1")]
        if self.api_key:
            protocols.append(Subprotocol(f"bearer.{self.api_key}"))
        async with websockets.connect(
            self.url, subprotocols=protocols, open_timeout=5, max_size=2**24, ping_interval=None
        ) as ws:
            self._ws = ws
            send_from = await self._handshake(ws)
            sender = asyncio.create_task(self._send(ws, send_from))
            try:
                async for raw in ws:
                    event = json.loads(raw)
                    if self._on_server_event(event):
                        return True
            finally:
                sender.cancel()
        return False

    def drop_connection(self) -> None:
        """Cut the TCP connection without a close frame (for tests and chaos drills)."""
        if self._ws is not None and self._ws.transport is not None:
            self._ws.transport.abort()

    async def _handshake(self, ws: websockets.ClientConnection) -> int:
        """Start or resume; returns the sample offset to send audio from."""
        if self._session_id is not None:
            resume = {
                "session_id": self._session_id,
                "offset": self._committed,
                "last_segment_id": self._last_segment,
            }
            await self._send_start(ws, {**self.start, "resume": resume})
            answer = json.loads(await ws.recv())
            if answer.get("event") == "ready":
                self._announce(answer)
                return int(answer["received_offset"])
            if answer.get("code") != "resume_unknown":
                raise ConnectionError(f"resume refused: {answer}")
        send_from, words = self._context()
        start = {**self.start, "timeline_offset": self._committed}
        if send_from < self._committed:
            start["context_samples"] = self._committed - send_from
            start["context_word_starts"] = words
        await self._send_start(ws, start)
        ready = json.loads(await ws.recv())
        if ready.get("event") != "ready":
            raise ConnectionError(f"start refused: {ready}")
        self._session_id = ready["session_id"]
        self._last_segment = -1
        self.sessions.append(ready["session_id"])
        self._announce(ready)
        return send_from

    async def _send_start(self, ws: websockets.ClientConnection, fields: dict[str, Any]) -> None:
        message = {"event": "start", **fields}
        self.starts_sent.append(message)
        await ws.send(json.dumps(message))

    def _context(self) -> tuple[int, list[int]]:
        """Where the audio sent as context starts, and the word starts in it: as the gateway
        picks a window's context, the first word that began in the last CONTEXT_SEC before the
        committed offset, 0.1 s early; no words there, no context."""
        floor = max(self._committed - int(CONTEXT_SEC * RATE), self._base)
        starts = [s for s in self._word_starts if floor <= s < self._committed]
        if not starts:
            return self._committed, []
        return max(starts[0] - RATE // 10, self._base), starts

    def _announce(self, ready: dict[str, Any]) -> None:
        if self.on_event:
            self.on_event(ready)

    async def _send(self, ws: websockets.ClientConnection, position: int) -> None:
        while True:
            if position < self._produced:
                start = (position - self._base) * BYTES_PER_SAMPLE
                chunk = bytes(self._audio[start : start + 9600])
                await ws.send(chunk)
                position += len(chunk) // BYTES_PER_SAMPLE
                continue
            if self._source_done:
                self._stop_sent = True
                await ws.send(json.dumps({"event": "stop"}))
                return
            self._more.clear()
            await self._more.wait()

    def _on_server_event(self, event: dict[str, Any]) -> bool:
        kind = event.get("event")
        if kind == "transcript":
            key = (self._session_id or "", int(event["segment_id"]))
            self._last_segment = max(self._last_segment, key[1])
            if key in self._seen:
                return False
            self._seen.add(key)
            self._word_starts.extend(round(w["start"] * RATE) for w in event["words"])
        elif kind == "ack":
            self._commit(int(event["committed_offset"]))
        self.events.append(event)
        if self.on_event:
            self.on_event(event)
        if kind == "error" and event.get("fatal") and event.get("code") in FATAL_FOR_GOOD:
            raise ConnectionError(f"{event['code']}: {event.get('message')}")
        return kind == "end" and self._finished(event)

    def _finished(self, end: dict[str, Any]) -> bool:
        """True for the `end` of the whole stream. False when the gateway ended the session
        before it had all the audio (shutting down, it finished the windows it had and closes
        with 1001): what it transcribed is final, the rest goes to a new session on the same
        timeline through the next connection."""
        transcribed = end.get("summary", {}).get("transcribed_sec")
        if transcribed is None:
            return True
        offset = round(float(transcribed) * RATE)
        if self._stop_sent and offset >= self._produced - RATE // 10:
            return True
        self._commit(offset)
        self._session_id = None
        self._stop_sent = False
        return False

    def _commit(self, offset: int) -> None:
        """Audio before `offset` is final: forget it, except the last CONTEXT_SEC (context for
        a new session, should the gateway lose this one)."""
        if offset > self._committed:
            drop = max(0, offset - int(CONTEXT_SEC * RATE) - self._base)
            del self._audio[: drop * BYTES_PER_SAMPLE]
            self._base += drop
            self._committed = offset
            while self._word_starts and self._word_starts[0] < self._base:
                self._word_starts.popleft()


def transcripts(events: list[dict[str, Any]]) -> str:
    return " ".join(e["text"] for e in events if e.get("event") == "transcript").strip()
