"""Real-time paced WebSocket sessions that record when each event arrived.

Lean on purpose (hundreds of these run in one process for the capacity test): frames are
precomputed memoryviews, every arrival is stamped with the loop clock before anything else is
done with it, and acks are kept as tuples. Times are seconds after the stream start: frame k
leaves at (k+1)·frame_sec, as the latency definition requires.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

import websockets

SAMPLE_RATE = 16_000


@dataclass
class SessionRecord:
    label: str
    start: dict[str, Any]
    frame_sec: float
    n_frames: int
    audio_sec: float
    ready: dict[str, Any] | None = None
    refused: dict[str, Any] | None = None  # the error event answering `start`, if any
    events: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    acks: list[tuple[float, int, int]] = field(default_factory=list)  # t, received, committed
    errors: list[dict[str, Any]] = field(default_factory=list)
    send_lateness: list[float] = field(default_factory=list)  # actual - scheduled, seconds
    connect_sec: float | None = None
    stop_sent: float | None = None
    end_at: float | None = None
    failure: str | None = None  # a client-side failure (connection lost, timeout)

    @property
    def ok(self) -> bool:
        return self.ready is not None and self.end_at is not None and self.failure is None

    @property
    def stop_to_end(self) -> float | None:
        if self.stop_sent is None or self.end_at is None:
            return None
        return self.end_at - self.stop_sent

    def text(self) -> str:
        return " ".join(e["text"] for _, e in self.events if e["event"] == "transcript").strip()

    def first_text_at(self) -> float | None:
        """Arrival of the first partial/transcript carrying any text."""
        return next(
            (
                t
                for t, e in self.events
                if e["event"] in ("partial", "transcript") and e.get("text", "").strip()
            ),
            None,
        )

    def ack_delays(self, ack_interval_sec: float = 1.0) -> list[float]:
        """Arrival of each once-per-second ack minus the send time of the frame that completed
        it: the gateway's event-loop delay plus the network, seen from the client. Acks that
        follow a window (not tied to a frame) are told apart by replaying the interval rule."""
        frame_samples = round(self.frame_sec * SAMPLE_RATE)
        interval = ack_interval_sec * SAMPLE_RATE
        out: list[float] = []
        last = 0
        for t, received, _ in self.acks:
            if received - last >= interval and received % frame_samples == 0:
                last = received
                out.append(t - (received // frame_samples) * self.frame_sec)
        return out


def frames_of(pcm16: bytes, frame_sec: float) -> list[bytes]:
    size = round(frame_sec * SAMPLE_RATE) * 2
    return [pcm16[i : i + size] for i in range(0, len(pcm16), size)]


async def run_session(
    url: str,
    pcm16: bytes,
    start: dict[str, Any],
    frame_sec: float = 0.3,
    label: str = "",
    delay_sec: float = 0.0,
    keep_events: bool = True,
    timeout_sec: float | None = None,
) -> SessionRecord:
    """Start, stream `pcm16` on the real-time schedule, stop, and record every event."""
    frames = frames_of(pcm16, frame_sec)
    record = SessionRecord(
        label=label,
        start=start,
        frame_sec=frame_sec,
        n_frames=len(frames),
        audio_sec=len(pcm16) / 2 / SAMPLE_RATE,
    )
    if delay_sec:
        await asyncio.sleep(delay_sec)
    limit = timeout_sec or record.audio_sec + 180.0
    try:
        await asyncio.wait_for(_session(url, frames, record, keep_events), timeout=limit)
    except TimeoutError:
        record.failure = f"no `end` within {limit:.0f} s"
    except (OSError, websockets.WebSocketException) as exc:
        record.failure = f"{type(exc).__name__}: {exc}"
    return record


async def _session(url: str, frames: list[bytes], record: SessionRecord, keep_events: bool) -> None:
    loop = asyncio.get_running_loop()
    began = time.monotonic()
    async with websockets.connect(
        url, max_size=2**24, open_timeout=30, ping_interval=None, compression=None
    ) as ws:
        await ws.send(json.dumps({"event": "start", **record.start}))
        while True:
            first = json.loads(await ws.recv())
            if first.get("event") == "ready":
                record.ready = first
                break
            if first.get("event") == "error":
                record.refused = first
                return
        record.connect_sec = time.monotonic() - began
        t0 = loop.time()  # stream start: frame k leaves at t0 + (k+1)·frame_sec
        reader = asyncio.create_task(_read(ws, record, t0, keep_events))
        try:
            for k, frame in enumerate(frames):
                due = t0 + (k + 1) * record.frame_sec
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                record.send_lateness.append(loop.time() - due)
                await ws.send(frame)
            record.stop_sent = loop.time() - t0
            await ws.send('{"event":"stop"}')
            await reader
        finally:
            reader.cancel()


async def _read(ws: Any, record: SessionRecord, t0: float, keep_events: bool) -> None:
    loop = asyncio.get_running_loop()
    try:
        async for raw in ws:
            t = loop.time() - t0
            event = json.loads(raw)
            kind = event.get("event")
            if kind == "ack":
                record.acks.append((t, event["received_offset"], event["committed_offset"]))
            elif kind == "end":
                record.end_at = t
                record.events.append((t, event))
                return
            elif kind == "error":
                record.errors.append(event)
                record.events.append((t, event))
            elif keep_events or kind == "transcript":
                record.events.append((t, event))
    except websockets.ConnectionClosedOK:
        pass
    if record.end_at is None:
        record.failure = record.failure or "connection closed before `end`"
