"""Server VAD turns: where a speaker starts and stops, from the gateway's VAD scores.

The session's VAD (api/vad_stream.py) scores every 32 ms chunk once; this reads those scores
with the client's own `threshold` and `silence_duration_ms`, so turns depend on the audio alone.
Speech starts at a chunk at or above the threshold; while speaking, a chunk above a lower one
(threshold - 0.15, as faster-whisper's VAD ends speech) keeps it going; it stops once
`silence_duration_ms` went by without that.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from api.core.speech import CHUNK
from api.openai.realtime_config import ServerVad
from contracts.audio import SAMPLE_RATE

HYSTERESIS = 0.15


@dataclass(frozen=True)
class Turn:
    kind: Literal["started", "stopped"]
    at: int  # samples on the session's timeline: the first speech chunk, or the end of speech


class TurnDetector:
    def __init__(self, vad: ServerVad) -> None:
        self.vad = vad
        self.speaking = False
        self.speech_end = 0

    def reset(self) -> None:
        """A commit or clear ended the buffer: whatever is said next is a new turn."""
        self.speaking = False

    def feed(self, first: int, probs: np.ndarray) -> list[Turn]:
        """Scores of consecutive chunks, the first starting at sample `first`."""
        turns: list[Turn] = []
        threshold = self.vad.threshold
        low = max(threshold - HYSTERESIS, 0.01)
        silence = max(self.vad.silence_duration_ms * SAMPLE_RATE // 1000, 1)
        for index, prob in enumerate(probs.tolist()):
            start = first + index * CHUNK
            if not self.speaking:
                if prob >= threshold:
                    self.speaking = True
                    self.speech_end = start + CHUNK
                    turns.append(Turn("started", start))
                continue
            if prob >= low:
                self.speech_end = start + CHUNK
            elif start + CHUNK - self.speech_end >= silence:
                self.speaking = False
                turns.append(Turn("stopped", self.speech_end))
        return turns
