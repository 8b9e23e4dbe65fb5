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
from typing import Any

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
    return json.loads(event.model_dump_json())
