"""Async client of `WS /ws/transcribe` (protocol version 1, docs/protocol.md).

async with connect("ws://127.0.0.1:8000/ws/transcribe", profile="balanced") as session:
    await session.send_audio(pcm16_bytes)
    await session.stop()
    async for event in session.events():
        print(event)
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection


class SessionError(RuntimeError):
    """The server refused the session or closed it with an error."""


class StreamingSession:
    def __init__(self, ws: ClientConnection, ready: dict[str, Any]) -> None:
        self.ws = ws
        self.ready = ready
        self.session_id: str = ready["session_id"]
        self.config: dict[str, Any] = ready["config"]

    async def send_audio(self, chunk: bytes) -> None:
        await self.ws.send(chunk)

    async def keepalive(self) -> None:
        await self.ws.send(json.dumps({"event": "keepalive"}))

    async def stop(self) -> None:
        await self.ws.send(json.dumps({"event": "stop"}))

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        """Every event until `end` (included) or the connection closes."""
        try:
            async for raw in self.ws:
                if isinstance(raw, bytes):
                    continue
                event = json.loads(raw)
                yield event
                if event.get("event") == "end":
                    return
        except websockets.ConnectionClosedOK:
            return

    async def stream(
        self, pcm16: bytes, frame_ms: int = 300, realtime: bool = False, sample_rate: int = 16000
    ) -> list[dict[str, Any]]:
        """Send all of `pcm16` in frames (paced in real time if asked), stop, collect events."""
        frame_bytes = int(sample_rate * frame_ms / 1000) * 2
        collected: list[dict[str, Any]] = []

        async def reader() -> None:
            async for event in self.events():
                collected.append(event)

        reading = asyncio.create_task(reader())
        loop = asyncio.get_running_loop()
        start = loop.time()
        for index, offset in enumerate(range(0, len(pcm16), frame_bytes)):
            if realtime:
                await asyncio.sleep(max(0.0, start + (index + 1) * frame_ms / 1000 - loop.time()))
            await self.send_audio(pcm16[offset : offset + frame_bytes])
        await self.stop()
        await reading
        return collected


@asynccontextmanager
async def connect(url: str, **start: Any) -> AsyncIterator[StreamingSession]:
    """Open a session: send `start` with the given fields and wait for `ready`."""
    # no pings: under backpressure the gateway stops reading, and a pong would wait too
    async with websockets.connect(url, max_size=2**24, open_timeout=10, ping_interval=None) as ws:
        await ws.send(json.dumps({"event": "start", **start}))
        while True:
            first = json.loads(await ws.recv())
            if first.get("event") == "ready":
                break
            if first.get("event") == "error":
                raise SessionError(f"{first.get('code')}: {first.get('message')}")
        yield StreamingSession(ws, first)
