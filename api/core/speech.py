"""Where a channel holds speech: the VAD's probability for every 32 ms chunk of its timeline.

Chunks line up with the timeline, so the same audio gives the same chunks, and the answers here
(is there speech in a stretch, where did the speaker stop, the speech spans of a window) depend
on the audio alone, never on how it arrived. A chunk is speech at `threshold` or above.
"""

from __future__ import annotations

import numpy as np

from contracts.audio import SAMPLE_RATE

CHUNK = 512  # samples per scored chunk
HISTORY = 4000  # chunks remembered (~2 min): enough for any window or endpoint decision
# a window's speech spans, as faster_whisper.vad.get_speech_timestamps finds them
SPAN_MIN_SILENCE_MS = 500
SPAN_PAD_MS = 200
SPAN_MIN_SPEECH_MS = 100


class SpeechTimeline:
    def __init__(self, threshold: float = 0.5, start: int = 0) -> None:
        self.threshold = threshold
        self.scored_until = start  # absolute sample: the end of the last scored chunk
        self._first = start  # absolute start of the first remembered chunk
        self._probs = np.zeros(0, dtype=np.float32)

    def add(self, first: int, probs: np.ndarray) -> None:
        """Probabilities of consecutive chunks, the first starting at absolute `first`."""
        if first != self.scored_until:
            raise ValueError(
                f"chunks must come in order: expected {self.scored_until}, got {first}"
            )
        self._probs = np.concatenate((self._probs, probs.astype(np.float32)))
        self.scored_until += probs.size * CHUNK
        drop = self._probs.size - HISTORY
        if drop > 0:
            self._probs = self._probs[drop:]
            self._first += drop * CHUNK

    def release(self) -> None:
        self._first = self.scored_until
        self._probs = np.zeros(0, dtype=np.float32)

    def _slice(self, start: int, end: int) -> tuple[int, np.ndarray]:
        """(absolute start of the first chunk, probabilities) of chunks overlapping
        [start, end)."""
        lo = max(0, (start - self._first) // CHUNK)
        hi = min(self._probs.size, -(-(end - self._first) // CHUNK))
        if hi <= lo:
            return self._first + lo * CHUNK, self._probs[:0]
        return self._first + lo * CHUNK, self._probs[lo:hi]

    def speech_between(self, start: int, end: int) -> bool:
        _, probs = self._slice(start, end)
        return bool((probs >= self.threshold).any())

    @property
    def last_speech_end(self) -> int | None:
        hits = np.flatnonzero(self._probs >= self.threshold)
        return None if hits.size == 0 else self._first + (int(hits[-1]) + 1) * CHUNK

    def pause_after(self, after: int, silence: int, until: int | None = None) -> int | None:
        """The first end of speech later than `after` that `silence` samples without speech
        followed (within what was scored, up to `until`): the absolute end of that speech."""
        until = self.scored_until if until is None else min(until, self.scored_until)
        first, probs = self._slice(after, until)
        speech = np.flatnonzero(probs >= self.threshold)
        if speech.size == 0:
            return None
        ends = first + (speech + 1) * CHUNK
        nexts = np.append(first + speech[1:] * CHUNK, until)
        found = np.flatnonzero((ends > after) & (nexts - ends >= silence))
        return int(ends[found[0]]) if found.size else None

    def spans(self, start: int, end: int) -> list[tuple[float, float]]:
        """Speech in [start, end) as faster-whisper's get_speech_timestamps would find it in
        that audio (threshold with a lower one to end speech, 500 ms of silence to end a span,
        spans under 100 ms dropped, 200 ms of padding), in seconds from `start`."""
        first, probs = self._slice(start, end)
        length = end - start
        offsets = first - start + CHUNK * np.arange(probs.size)
        runs = _speech_runs(probs, offsets, length, self.threshold)
        return [
            (round(a / SAMPLE_RATE, 3), round(b / SAMPLE_RATE, 3)) for a, b in _pad(runs, length)
        ]


def _speech_runs(
    probs: np.ndarray, offsets: np.ndarray, length: int, threshold: float
) -> list[list[int]]:
    """get_speech_timestamps' hysteresis (without its maximum span length), in samples."""
    negative = max(threshold - 0.15, 0.01)
    min_silence = SAMPLE_RATE * SPAN_MIN_SILENCE_MS // 1000
    min_speech = SAMPLE_RATE * SPAN_MIN_SPEECH_MS // 1000
    runs: list[list[int]] = []
    start: int | None = None
    temp_end = 0
    for prob, at in zip(probs.tolist(), offsets.tolist(), strict=True):
        at = max(at, 0)
        if prob >= threshold:
            temp_end = 0
            if start is None:
                start = at
            continue
        if start is not None and prob < negative:
            if not temp_end:
                temp_end = at
            if at - temp_end >= min_silence:
                if temp_end - start > min_speech:
                    runs.append([start, temp_end])
                start, temp_end = None, 0
    if start is not None and length - start > min_speech:
        runs.append([start, length])
    return runs


def _pad(runs: list[list[int]], length: int) -> list[list[int]]:
    pad = SAMPLE_RATE * SPAN_PAD_MS // 1000
    for i, run in enumerate(runs):
        if i == 0:
            run[0] = max(0, run[0] - pad)
        if i < len(runs) - 1:
            gap = runs[i + 1][0] - run[1]
            if gap < 2 * pad:
                run[1] += gap // 2
                runs[i + 1][0] = max(0, runs[i + 1][0] - gap // 2)
            else:
                run[1] = min(length, run[1] + pad)
                runs[i + 1][0] = max(0, runs[i + 1][0] - pad)
        else:
            run[1] = min(length, run[1] + pad)
    return [run for run in runs if run[1] > run[0]]
