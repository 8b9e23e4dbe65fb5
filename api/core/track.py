"""One channel of a session's audio on its absolute timeline (16 kHz samples).

The buffer runs from `base` to `received`. `cursor` marks where the next window starts; audio
before it stays available for `keep_sec` as acoustic context for later windows. Samples live in
one preallocated int16 array, grown by doubling and compacted rarely (never np.append).

Levels are per 10 ms frame on a grid that starts at the cursor, each computed once from its own
samples, so they do not depend on how the audio was split into network frames.
"""

from __future__ import annotations

import bisect

import numpy as np

from api.core.windowing import FRAME_SAMPLES, frame_db
from contracts.audio import SAMPLE_RATE


class AudioTrack:
    def __init__(self, channel: int = 0, keep_sec: float = 10.0, start_offset: int = 0) -> None:
        self.channel = channel
        self.keep = int(keep_sec * SAMPLE_RATE)
        self.origin = start_offset  # absolute index of the first sample this track received
        self.base = start_offset  # absolute index of _pcm[0]
        self.cursor = start_offset  # absolute index of the first sample not yet in a window
        self._pcm = np.zeros(SAMPLE_RATE * 16, dtype=np.int16)
        self._len = 0
        self._db = np.zeros(0, dtype=np.float32)  # per complete frame from the cursor on
        self._arrivals: list[tuple[int, float]] = []  # (absolute end sample, monotonic time)

    @property
    def received(self) -> int:
        return self.base + self._len

    @property
    def pending(self) -> int:
        return self.received - self.cursor

    @property
    def pending_db(self) -> np.ndarray:
        return self._db

    def append(self, samples: np.ndarray, arrival: float) -> None:
        if samples.size == 0:
            return
        self._ensure_room(samples.size)
        frames_done = self.cursor - self.base + self._db.size * FRAME_SAMPLES
        self._pcm[self._len : self._len + samples.size] = samples
        self._len += samples.size
        new_db = frame_db(self._pcm[frames_done : self._len])
        if new_db.size:
            self._db = np.concatenate((self._db, new_db))
        self._arrivals.append((self.received, arrival))

    def advance(self, samples: int) -> tuple[int, int]:
        """Move the cursor: the next window is [start, end) in absolute samples."""
        samples = max(0, min(samples, self.pending))
        start = self.cursor
        self.cursor += samples
        if samples % FRAME_SAMPLES:  # frames no longer line up (a final cut): recompute
            self._db = frame_db(self._pcm[self.cursor - self.base : self._len])
        else:
            self._db = self._db[samples // FRAME_SAMPLES :].copy()
        return start, self.cursor

    def audio(self, start: int, end: int) -> np.ndarray:
        """A copy of absolute samples [start, end); start is raised to what is still kept."""
        start = max(start, self.base)
        return self._pcm[start - self.base : end - self.base].copy()

    def levels(self, start: int, end: int) -> np.ndarray:
        """Per-frame levels (dBFS) of absolute samples [start, end) (start raised to what is
        kept), on a grid that starts at `start`."""
        return frame_db(self._pcm[max(start, self.base) - self.base : end - self.base])

    def arrival_of(self, sample: int) -> float | None:
        """When the frame holding absolute `sample` arrived (for word latency)."""
        index = bisect.bisect_left(self._arrivals, (sample, float("-inf")))
        return self._arrivals[index][1] if index < len(self._arrivals) else None

    def forget_arrivals_before(self, sample: int) -> None:
        index = bisect.bisect_left(self._arrivals, (sample, float("-inf")))
        if index > 0:
            del self._arrivals[:index]

    def release(self) -> None:
        """The session is over: drop the samples now rather than whenever the garbage collector
        gets to the session (its objects form reference cycles; see api/session.py)."""
        self.base = self.cursor = self.received
        self._pcm = np.zeros(0, dtype=np.int16)
        self._len = 0
        self._db = np.zeros(0, dtype=np.float32)
        self._arrivals.clear()

    def _ensure_room(self, extra: int) -> None:
        if self._len + extra <= self._pcm.size:
            return
        # drop what is older than the context we keep, then grow if still short
        drop = max(0, min(self.cursor - self.keep, self.received) - self.base)
        kept = self._len - drop
        size = max(self._pcm.size, 1)
        while kept + extra > size:
            size *= 2
        target = self._pcm if size == self._pcm.size else np.zeros(size, dtype=np.int16)
        target[:kept] = self._pcm[drop : self._len]
        self._pcm = target
        self._len = kept
        self.base += drop
