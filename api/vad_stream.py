"""Streaming speech detection for one session channel: scores new audio into its
SpeechTimeline (api/core/speech.py) in a worker thread, so the event loop never waits on it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import numpy as np

from api.core.speech import CHUNK, SpeechTimeline
from api.core.track import AudioTrack
from api.vad_model import SileroModel, SileroStream
from contracts.audio import pcm16_to_float


class StreamingVad:
    def __init__(self, model: SileroModel, timeline: SpeechTimeline) -> None:
        self.timeline = timeline
        self._stream = SileroStream(model)
        self._lock = asyncio.Lock()
        # called with (absolute first sample, probabilities) of every scored batch of chunks
        self.listeners: list[Callable[[int, np.ndarray], None]] = []

    async def update(self, track: AudioTrack) -> None:
        """Score every whole chunk received so far, in order.

        Audio that arrives while a batch is scored in the worker thread is scored too before
        this returns, so a caller that decides right after it sees every whole chunk scored."""
        async with self._lock:
            while (count := (track.received - self.timeline.scored_until) // CHUNK) > 0:
                first = self.timeline.scored_until
                audio = pcm16_to_float(track.audio(first, first + count * CHUNK))
                probs = await asyncio.to_thread(self._stream.score, audio)
                self.timeline.add(first, probs)
                for listener in self.listeners:
                    listener(first, probs)
