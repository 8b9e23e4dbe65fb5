"""Replay a session through the core without sockets: audio in frames on a virtual clock, the
VAD's chunk probabilities as chunks become whole, every request answered by a `respond`
function (recorded worker responses, a cache of real model calls, or a fake for pure logic),
every event collected. The tests and the policy experiments (bench/experiments/) use it.

The clock is virtual: frame k arrives at (k+1)·frame_sec, and a request costs `cost_sec`
(or what `cost` says for it), during which later frames keep arriving.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
from pydantic import BaseModel

from api.config import GatewaySettings
from api.core.session import SessionCore
from api.core.speech import CHUNK
from api.core.steps import NullMeter, Step, WindowRequest
from api.session_config import build_session_config
from contracts.events import StartMessage
from contracts.worker import TranscriptionResponse

Respond = Callable[[WindowRequest], TranscriptionResponse]


@dataclass
class Run:
    events: list[dict[str, Any]] = field(default_factory=list)
    times: list[float] = field(default_factory=list)  # virtual time each event was sent
    requests: list[WindowRequest] = field(default_factory=list)
    core: SessionCore | None = None

    def add(self, t: float, events: list[BaseModel]) -> None:
        for event in events:
            self.events.append(_dump(event))
            self.times.append(t)

    def timed(self) -> list[tuple[float, dict[str, Any]]]:
        return list(zip(self.times, self.events, strict=True))

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == kind]

    @property
    def text(self) -> str:
        return " ".join(e["text"] for e in self.of("transcript"))


def make_core(
    start: dict[str, Any],
    settings: GatewaySettings | None = None,
    timeline_offset: int = 0,
    context_samples: int = 0,
    context_word_starts: tuple[int, ...] = (),
) -> SessionCore:
    settings = settings or GatewaySettings()
    message = StartMessage.model_validate({"event": "start", **start})
    config = build_session_config(message, settings)
    return SessionCore(
        "test",
        config,
        settings,
        NullMeter(),
        timeline_offset,
        context_samples,
        context_word_starts,
    )


def drive(
    core: SessionCore,
    pcm: np.ndarray,
    probs: np.ndarray,
    respond: Respond,
    frame_sec: float = 0.3,
    cost_sec: float | Callable[[WindowRequest], float] = 0.5,
    first_chunk_at: int = 0,
    stop: bool = True,
    pace: float = 1.0,
) -> Run:
    """Mono only. `probs`: the VAD's probability of every whole chunk of `pcm` (chunk i starts
    at sample first_chunk_at + i*CHUNK of the timeline, pcm[0] at the track's origin). One
    request at the pool at a time; each costs `cost_sec` (seconds, or a function of the
    request: a cost model of a machine). `pace`: how much faster than real time the audio is
    sent (2.0: a frame every frame_sec / 2)."""
    run = Run(core=core)
    channel = core.channels[0]
    frame = int(frame_sec * 16000)
    cost = cost_sec if callable(cost_sec) else (lambda _request: float(cost_sec))
    clock = 0.0
    waiting: WindowRequest | None = None
    done_at = 0.0  # when the request at the pool is answered

    def score() -> None:
        speech = channel.speech
        if speech is None:
            return
        while True:
            index = (speech.scored_until - first_chunk_at) // CHUNK
            if index >= probs.size or speech.scored_until + CHUNK > channel.track.received:
                return
            speech.add(speech.scored_until, probs[index : index + 1])

    def deliver(step: Step, t: float) -> None:
        nonlocal waiting, done_at
        run.add(t, step.events)
        waiting = step.request
        if waiting is not None:
            run.requests.append(waiting)
            done_at = t + cost(waiting)

    def answer() -> None:
        assert waiting is not None
        t = done_at
        result = respond(waiting).model_copy(deep=True)
        # the worker's own account of the request's cost: the cost model's
        result.timing.queue_ms, result.timing.decode_ms = 0.0, 0.0
        result.timing.inference_ms = cost(waiting) * 1000
        deliver(core.on_response(waiting, result, t), t)
        if waiting is None:  # as the shell does: score what arrived, then decide again
            score()
            deliver(core.poll(0, t), t)

    for k, offset in enumerate(range(0, pcm.size, frame)):
        clock = (k + 1) * frame_sec / pace
        while waiting is not None and done_at <= clock:
            answer()
        run.add(clock, core.push([pcm[offset : offset + frame]], clock))
        score()
        if waiting is None:
            deliver(core.poll(0, clock), clock)
    if stop:
        core.finish()
    for _ in range(100_000):
        if waiting is None:
            deliver(core.poll(0, clock), clock)
            if waiting is None:
                break
        answer()
        clock = max(clock, done_at)
    return run


def _dump(event: BaseModel) -> dict[str, Any]:
    return cast(dict[str, Any], json.loads(event.model_dump_json()))


@dataclass
class _Lane:
    """One session of a multi-session replay."""

    core: SessionCore
    pcm: np.ndarray
    probs: np.ndarray
    run: Run
    waiting: WindowRequest | None = None  # asked for, not yet answered
    asked_at: float = 0.0
    served_at: float = 0.0
    frames_sent: int = 0


def drive_sessions(
    sessions: list[tuple[SessionCore, np.ndarray, np.ndarray]],
    respond: Respond,
    frame_sec: float = 0.3,
    cost: Callable[[WindowRequest], float] = lambda _request: 0.5,
) -> list[Run]:
    """Several real-time sessions (mono, started together) sharing one pool that answers one
    request at a time, first come first served: what a single worker does with them."""
    import heapq

    lanes = [_Lane(core, pcm, probs, Run(core=core)) for core, pcm, probs in sessions]
    frame = int(frame_sec * 16000)
    queue: list[int] = []  # lanes whose request waits for the pool, in order
    busy_until = 0.0
    serving: int | None = None
    clock = 0.0
    # (time, order, kind, lane): kind 0 = the pool answers, 1 = a frame arrives
    agenda: list[tuple[float, int, int, int]] = []
    order = 0

    def plan(t: float, kind: int, lane: int) -> None:
        nonlocal order
        heapq.heappush(agenda, (t, order, kind, lane))
        order += 1

    def score(lane: _Lane) -> None:
        speech = lane.core.channels[0].speech
        if speech is None:
            return
        while True:
            index = speech.scored_until // CHUNK
            received = lane.core.channels[0].track.received
            if index >= lane.probs.size or speech.scored_until + CHUNK > received:
                return
            speech.add(speech.scored_until, lane.probs[index : index + 1])

    def start_next(t: float) -> None:
        nonlocal serving, busy_until
        if serving is None and queue:
            serving = queue.pop(0)
            waiting = lanes[serving].waiting
            assert waiting is not None
            lanes[serving].served_at = t
            busy_until = t + cost(waiting)
            plan(busy_until, 0, serving)

    def deliver(index: int, step: Step, t: float) -> None:
        lane = lanes[index]
        lane.run.add(t, step.events)
        lane.waiting = step.request
        if lane.waiting is not None:
            lane.run.requests.append(lane.waiting)
            lane.asked_at = t
            queue.append(index)
            start_next(t)

    for index in range(len(lanes)):
        plan(frame_sec, 1, index)
    while agenda:
        clock, _, kind, index = heapq.heappop(agenda)
        lane = lanes[index]
        if kind == 0:  # the pool answers this lane
            request = lane.waiting
            assert request is not None
            result = respond(request).model_copy(deep=True)
            # as the worker reports it: its wait in the queue, then its model time
            result.timing.queue_ms = (lane.served_at - lane.asked_at) * 1000
            result.timing.decode_ms = 0.0
            result.timing.inference_ms = cost(request) * 1000
            serving = None
            deliver(index, lane.core.on_response(request, result, clock), clock)
            if lane.waiting is None:
                score(lane)
                deliver(index, lane.core.poll(0, clock), clock)
            start_next(clock)
            continue
        offset = lane.frames_sent * frame
        if offset < lane.pcm.size:
            lane.run.add(clock, lane.core.push([lane.pcm[offset : offset + frame]], clock))
            lane.frames_sent += 1
            score(lane)
            plan(clock + frame_sec, 1, index)
        elif not lane.core.channels[0].finishing:
            lane.core.finish()
        if lane.waiting is None:
            deliver(index, lane.core.poll(0, clock), clock)
    return [lane.run for lane in lanes]
