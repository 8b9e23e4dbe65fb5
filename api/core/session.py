"""A session's decisions, without sockets: its channels (one policy each, batch or stream),
what they share (the ledger), the offsets a client resumes from, acknowledgements and
backpressure, and the summary at the end.

The async shell (api/session.py) feeds it decoded audio, VAD scores, worker responses and the
clock, and sends what it returns.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel

from api.config import GatewaySettings
from api.core.batch import BatchPolicy
from api.core.channel import ChannelCore
from api.core.ledger import SessionLedger
from api.core.steps import Meter, Step, WindowRequest
from api.core.stream import StreamPolicy
from api.session_config import SessionConfig
from contracts.audio import SAMPLE_RATE
from contracts.events import AckEvent, TranscriptEvent
from contracts.worker import TranscriptionResponse


class SessionCore:
    def __init__(
        self,
        session_id: str,
        config: SessionConfig,
        settings: GatewaySettings,
        meter: Meter,
        timeline_offset: int = 0,
        context_samples: int = 0,
        context_word_starts: Sequence[int] = (),
    ) -> None:
        self.id = session_id
        self.config = config
        self.settings = settings
        self.meter = meter
        self.ledger = SessionLedger(session_id, config.language, settings.language_lock_speech_sec)
        kind = StreamPolicy if config.mode == "stream" else BatchPolicy
        self.channels: list[ChannelCore] = [
            kind(
                c,
                settings,
                config,
                self.ledger,
                meter,
                timeline_offset,
                context_samples,
                context_word_starts,
            )
            for c in range(config.channels)
        ]
        self._last_ack_offset = timeline_offset

    # ---- audio in ------------------------------------------------------------------------

    def push(self, channels: Sequence[np.ndarray], arrival: float) -> list[BaseModel]:
        """Decoded audio, one array per channel; an ack now and then."""
        received = 0
        for channel, samples in zip(self.channels, channels, strict=True):
            channel.push(samples, arrival)
            received = samples.size
        if received:
            self.meter.received(received / SAMPLE_RATE)
        interval = self.settings.ack_interval_sec * SAMPLE_RATE
        if self.received - self._last_ack_offset >= interval:
            self._last_ack_offset = self.received
            return [self.ack()]
        return []

    def finish(self) -> None:
        for channel in self.channels:
            channel.finish()

    # ---- the channels' steps -------------------------------------------------------------

    def poll(self, channel: int, now: float) -> Step:
        return self._acked(self.channels[channel].poll(now))

    def on_response(
        self, request: WindowRequest, result: TranscriptionResponse, now: float
    ) -> Step:
        """The pool's answer. What to do next comes from the next `poll`, after the audio that
        arrived meanwhile has been scored (a decision never looks past what the VAD heard)."""
        return self._acked(self.channels[request.channel].on_response(request, result, now))

    def on_failure(self, request: WindowRequest, message: str, now: float) -> Step:
        return self._acked(self.channels[request.channel].on_failure(request, message, now))

    def _acked(self, step: Step) -> Step:
        if step.committed:
            step.events.append(self.ack())
        return step

    def ack(self) -> AckEvent:
        return AckEvent(received_offset=self.received, committed_offset=self.committed)

    # ---- offsets, backpressure -----------------------------------------------------------

    @property
    def received(self) -> int:
        return min(c.track.received for c in self.channels)

    @property
    def committed(self) -> int:
        return min(c.committed_offset for c in self.channels)

    @property
    def pending_sec(self) -> float:
        """Audio received but not yet final: what backpressure watches."""
        # (negative while a new session's context arrives: none of it waits to be transcribed)
        pending = max(c.track.received - c.committed_offset for c in self.channels)
        return max(0, pending) / SAMPLE_RATE

    @property
    def buffer_limit_sec(self) -> float:
        # never below a full window plus a held-back word, or a session could wait for audio
        # that backpressure keeps unread
        return max(self.settings.max_buffered_sec, self.config.batch.max_batch_window_sec + 2.0)

    @property
    def at_buffer_limit(self) -> bool:
        return self.pending_sec >= self.buffer_limit_sec

    def replay_after(self, segment_id: int, held: set[int]) -> list[TranscriptEvent]:
        return self.ledger.replay_after(segment_id, held)

    # ---- figures -------------------------------------------------------------------------

    def summary(self, wall_sec: float) -> dict[str, Any]:
        return {
            "audio_sec": round(self.received / SAMPLE_RATE, 3),
            "transcribed_sec": round(self.committed / SAMPLE_RATE, 3),
            "windows": sum(c.windows for c in self.channels),
            "segments": self.ledger.segments,
            "words": self.ledger.words,
            "language": self.ledger.language,
            "failed_spans": [s.model_dump() for s in self.ledger.failed_spans],
            "text": self.ledger.text,
            "wall_sec": round(wall_sec, 3),
        }

    def transcript(self, wall_sec: float) -> dict[str, Any]:
        """The finished session, for GET /v1/sessions/{id}/transcript."""
        return {
            "session_id": self.id,
            "text": self.ledger.text,
            "segments": [e.model_dump() for e in self.ledger.sent],
            "summary": self.summary(wall_sec),
        }

    def release(self) -> None:
        for channel in self.channels:
            channel.release()
