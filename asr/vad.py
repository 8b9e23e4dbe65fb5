"""The worker's own speech detection, for requests that bring no speech spans.

The gateway runs one VAD per session and sends each window's speech spans with it, so its
windows never come here. Direct callers (a file posted to `/transcribe`, the benchmark's
baselines) get the Silero VAD that faster-whisper ships, with the same settings the gateway
uses. Silero judges speech by its shape, not its level, so very quiet speech (peaks near
-49 dBFS) still counts and loud noise does not: nothing gates on a fixed energy threshold.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from contracts.audio import SAMPLE_RATE


class SpeechSpan(NamedTuple):
    start: float  # seconds
    end: float


def speech_spans(
    audio: np.ndarray,
    threshold: float = 0.5,
    min_silence_ms: int = 500,
    pad_ms: int = 200,
) -> list[SpeechSpan]:
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    if audio.size < 512:
        return []
    options = VadOptions(
        threshold=threshold,
        min_silence_duration_ms=min_silence_ms,
        speech_pad_ms=pad_ms,
        min_speech_duration_ms=100,
    )
    stamps = get_speech_timestamps(audio, options, sampling_rate=SAMPLE_RATE)
    return [SpeechSpan(s["start"] / SAMPLE_RATE, s["end"] / SAMPLE_RATE) for s in stamps]


def as_spans(pairs: list[tuple[float, float]]) -> list[SpeechSpan]:
    return [SpeechSpan(float(a), float(b)) for a, b in pairs]


def total_speech(spans: list[SpeechSpan]) -> float:
    return sum(span.end - span.start for span in spans)


def overlaps_speech(start: float, end: float, spans: list[SpeechSpan], margin: float = 0.2) -> bool:
    return any(start < span.end + margin and end > span.start - margin for span in spans)


def speech_audio(audio: np.ndarray, spans: list[SpeechSpan], limit_sec: float = 30.0) -> np.ndarray:
    """The speech parts joined, up to limit_sec: what language detection should listen to."""
    pieces: list[np.ndarray] = []
    remaining = int(limit_sec * SAMPLE_RATE)
    for span in spans:
        piece = audio[int(span.start * SAMPLE_RATE) : int(span.end * SAMPLE_RATE)][:remaining]
        pieces.append(piece)
        remaining -= piece.size
        if remaining <= 0:
            break
    return np.concatenate(pieces) if pieces else audio[:0]
