"""Speaking time of one channel, measured as `faster_whisper.vad.get_speech_timestamps` would
measure the same audio offline.

Silero (the model faster-whisper ships) scores every 32 ms chunk with its recurrent state carried
from call to call, and chunks are joined into speech the way get_speech_timestamps does: speech
starts at a chunk >= THRESHOLD and ends once the probability stayed under THRESHOLD - 0.15 for
PAUSE_MS (shorter pauses inside speech count as speaking). The probabilities come from the
channel's StreamingVad (api/vad_stream.py), which scores every chunk once for endpointing,
silence gating and these figures alike.
"""

from __future__ import annotations

import bisect

import numpy as np

from contracts.audio import SAMPLE_RATE

CHUNK = 512  # samples per scored chunk (32 ms at 16 kHz)
CONTEXT = 64  # samples of the previous chunk the model sees with each chunk
THRESHOLD = 0.5
NEG_THRESHOLD = THRESHOLD - 0.15
PAUSE_MS = 500  # silence that ends a stretch of speech (get_speech_timestamps' min_silence)


class SpeechMeter:
    """Fed the channel VAD's chunk probabilities (`observe`) and the sample count (`push`)."""

    def __init__(
        self, pause_ms: int = PAUSE_MS, origin: int = 0, audio_start: int | None = None
    ) -> None:
        """`origin`: absolute sample where the session's timeline starts; `audio_start`: where
        the pushed audio starts, earlier when a new session gets context before its timeline
        (heard by the model, not this session's speech)."""
        self._pause = pause_ms * SAMPLE_RATE // 1000
        self._origin = origin
        self._pushed_until = origin if audio_start is None else audio_start  # absolute sample
        self.scored = 0  # samples scored (whole chunks)
        self._triggered = False
        self._start = 0  # sample where the open stretch of speech began
        self._temp_end = 0  # where a possible pause began (0: none)
        self._closed = 0  # samples of speech in finished stretches
        self._starts: list[int] = []  # finished stretches, in order
        self._ends: list[int] = []
        self._totals: list[int] = []  # speech up to the end of each finished stretch
        self._ended = False

    def push(self, samples: np.ndarray) -> None:
        if not self._ended:
            self._pushed_until += samples.size

    @property
    def received(self) -> int:
        """Samples pushed past the origin."""
        return max(0, self._pushed_until - self._origin)

    def observe(self, first: int, probs: np.ndarray) -> None:
        """Probabilities of consecutive chunks starting at absolute sample `first`."""
        if self._ended or probs.size == 0:
            return
        start = first - self._origin
        if start < 0:  # context sent before the session's timeline: not its speech
            skip = -(start // CHUNK)  # whole chunks, rounded up
            probs, start = probs[skip:], start + skip * CHUNK
            if probs.size == 0:
                return
        self.scored = start + probs.size * CHUNK
        self._segment(probs, start)

    @property
    def speech_samples(self) -> int:
        if not self._triggered:
            return self._closed
        end = self._temp_end or self.scored
        return self._closed + max(0, end - self._start)

    def speech_until(self, sample: int) -> int:
        """Samples of speech before `sample` (relative to the first pushed sample)."""
        index = bisect.bisect_right(self._ends, sample)
        total = self._totals[index - 1] if index else 0
        if index < len(self._starts):
            return total + max(0, sample - self._starts[index])
        if self._triggered:
            total += max(0, min(sample, self._temp_end or self.scored) - self._start)
        return total

    @property
    def speech_sec(self) -> float:
        return self.speech_samples / SAMPLE_RATE

    @property
    def audio_sec(self) -> float:
        return self.received / SAMPLE_RATE

    def finish(self) -> None:
        """The audio ended: open speech runs to the end of the audio, as offline."""
        if not self._ended:
            self._ended = True
            if self._triggered:
                self._close(self.received)

    def _segment(self, probs: np.ndarray, first: int) -> None:
        """get_speech_timestamps' state machine (no maximum length, no padding), incremental."""
        for index, prob in enumerate(probs.tolist()):
            position = first + index * CHUNK
            if prob >= THRESHOLD:
                self._temp_end = 0
                if not self._triggered:
                    self._triggered = True
                    self._start = position
                continue
            if prob < NEG_THRESHOLD and self._triggered:
                if not self._temp_end:
                    self._temp_end = position
                if position - self._temp_end >= self._pause:
                    self._close(self._temp_end)
                    self._temp_end = 0

    def _close(self, end: int) -> None:
        self._starts.append(self._start)
        self._ends.append(end)
        self._closed += end - self._start
        self._totals.append(self._closed)
        self._triggered = False
