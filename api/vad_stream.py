"""Streaming speech detection for a session channel with the Silero VAD faster-whisper ships.

Silero is recurrent: it scores 32 ms chunks (512 samples, with 64 samples of context) in order,
and its state (h, c) must be carried from one call to the next; then the probabilities equal
those of an offline pass over the same audio. Scoring costs ~0.15 ms per chunk, ~0.5% of a core
per stream, and runs in a worker thread so the event loop never waits on it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import numpy as np

from api.audio_track import AudioTrack

CHUNK = 512
CONTEXT = 64
HISTORY = 4000  # chunks remembered (~2 min): enough for any window or endpoint decision


class StreamingVad:
    def __init__(self, threshold: float = 0.5, start: int = 0) -> None:
        from faster_whisper.vad import get_vad_model

        self._session = get_vad_model().session
        self.threshold = threshold
        self._next = start  # absolute sample where the next chunk starts
        self._context = np.zeros(CONTEXT, dtype=np.float32)
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._starts = np.zeros(0, dtype=np.int64)  # absolute start of each scored chunk
        self._speech = np.zeros(0, dtype=bool)
        self.last_speech_end: int | None = None  # absolute sample
        self._lock = asyncio.Lock()
        # called with (absolute first sample, probabilities) of every scored batch of chunks
        self.listeners: list[Callable[[int, np.ndarray], None]] = []

    async def update(self, track: AudioTrack) -> None:
        """Score every whole chunk received so far, in order.

        Audio that arrives while a batch is scored in the worker thread is scored too before
        this returns: a caller that cuts windows right after it (without awaiting in between)
        must never see unscored audio, or a burst that lands during the first scoring would be
        judged silence and dropped (a client sending faster than real time hit exactly that)."""
        async with self._lock:
            while (count := (track.received - self._next) // CHUNK) > 0:
                await self._score_chunks(track, count)

    async def _score_chunks(self, track: AudioTrack, count: int) -> None:
        first = self._next
        self._next += count * CHUNK
        audio = track.audio(first, self._next).astype(np.float32) / 32768.0
        chunks = audio.reshape(count, CHUNK)
        contexts = np.concatenate((self._context[None, :], chunks[:-1, -CONTEXT:]))
        self._context = chunks[-1, -CONTEXT:].copy()
        batch = np.concatenate((contexts, chunks), axis=1)
        probs = await asyncio.to_thread(self._score, batch)
        starts = first + CHUNK * np.arange(count, dtype=np.int64)
        speech = probs >= self.threshold
        self._starts = np.concatenate((self._starts, starts))[-HISTORY:]
        self._speech = np.concatenate((self._speech, speech))[-HISTORY:]
        if speech.any():
            self.last_speech_end = int(starts[np.flatnonzero(speech)[-1]]) + CHUNK
        for listener in self.listeners:
            listener(first, probs)

    def _score(self, batch: np.ndarray) -> np.ndarray:
        out, self._h, self._c = self._session.run(
            None, {"input": batch, "h": self._h, "c": self._c}
        )
        return np.asarray(out).reshape(-1)

    def release(self) -> None:
        """The session is over: drop the chunk history."""
        self._starts = np.zeros(0, dtype=np.int64)
        self._speech = np.zeros(0, dtype=bool)

    def speech_between(self, start: int, end: int) -> bool:
        mask = (self._starts + CHUNK > start) & (self._starts < end)
        return bool(self._speech[mask].any())

    def silence_after_speech(self, now: int) -> int:
        """Samples of silence since speech last ended (0 while speaking or before any)."""
        if self.last_speech_end is None:
            return 0
        return max(0, min(now, self._next) - self.last_speech_end)
