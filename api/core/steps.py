"""What the session core hands its async shell: requests for the pool and events for the client.

The core never does I/O. It answers `poll`, `on_response` and `on_failure` with a Step: events
to send, in order, and at most one request to make (a channel's final windows go to the pool one
at a time, in order). Figures go to a Meter (the gateway's Prometheus metrics; a recorder in
tests).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np
from pydantic import BaseModel

from contracts.worker import DecodeOptions, Priority, SpeechSpans

Purpose = Literal["window", "alone", "pass", "partial"]


@dataclass(frozen=True, eq=False)
class WindowRequest:
    """Audio of one channel for the pool: samples [start, end) of its timeline; words before
    `since` were already sent (the audio before it is context)."""

    channel: int
    purpose: Purpose  # window: a batch window (with context); alone: its retry without;
    # pass: a stream-mode pass over the buffer; partial: a cheap look at the uncommitted tail
    start: int
    since: int
    end: int
    audio: np.ndarray  # int16, a copy
    options: DecodeOptions
    priority: Priority
    speech_spans: SpeechSpans | None  # None: no gateway VAD (the worker runs its own)
    version: int = 0  # a partial's: the channel's commit count when it was asked

    @property
    def key(self) -> str:
        """Identifies the request by what it asks (for recorded responses in tests)."""
        return f"{self.purpose}:{self.channel}:{self.start}:{self.since}:{self.end}"


@dataclass
class Step:
    events: list[BaseModel] = field(default_factory=list)
    request: WindowRequest | None = None
    committed: bool = False  # the committed offset moved: an ack is due
    done: bool = False  # finishing, and nothing is left to transcribe

    def then(self, other: Step) -> Step:
        """This step followed by another: events in order, either's request (a channel has at
        most one at a time), the later state."""
        request = other.request if other.request is not None else self.request
        return Step(
            self.events + other.events,
            request,
            self.committed or other.committed,
            other.done and request is None,
        )


class Meter(Protocol):
    def received(self, seconds: float) -> None: ...
    def window_sent(self, kind: str) -> None: ...
    def window_done(self, seconds: float) -> None: ...
    def transcribed(self, seconds: float) -> None: ...
    def word_latency(self, seconds: float) -> None: ...
    def error(self, kind: str) -> None: ...


class NullMeter:
    """Figures nobody reads."""

    def received(self, seconds: float) -> None:
        pass

    def window_sent(self, kind: str) -> None:
        pass

    def window_done(self, seconds: float) -> None:
        pass

    def transcribed(self, seconds: float) -> None:
        pass

    def word_latency(self, seconds: float) -> None:
        pass

    def error(self, kind: str) -> None:
        pass
