"""The one audio format inside the system: PCM 16-bit little-endian, mono, 16 kHz.

Clients may send other rates and encodings; the gateway converts them at the edge. Every
conversion between float samples in [-1, 1] and PCM16 goes through these two functions.
"""

from __future__ import annotations

from typing import cast

import numpy as np

SAMPLE_RATE = 16_000
BYTES_PER_SAMPLE = 2
PCM16_MAX = 32767 / 32768  # the largest float that maps to a PCM16 value without clipping


class AudioRejected(ValueError):
    """Audio a request cannot use, with the HTTP status that names the problem."""

    def __init__(self, status: int, message: str, code: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


def pcm16_to_float(pcm: bytes | bytearray | memoryview | np.ndarray) -> np.ndarray:
    samples = pcm if isinstance(pcm, np.ndarray) else np.frombuffer(pcm, dtype="<i2")
    return samples.astype(np.float32) / 32768.0


def float_to_pcm16(audio: np.ndarray) -> np.ndarray:
    # np.clip of an ndarray of unknown dtype is typed Any
    return cast(np.ndarray, (np.clip(audio, -1.0, PCM16_MAX) * 32768.0).astype("<i2"))


def check_duration(samples: int, limit_sec: float) -> None:
    """413 for audio longer than the limit; 400 for none at all."""
    if samples == 0:
        raise AudioRejected(400, "cannot decode audio: no samples in the file", "bad_audio")
    seconds = samples / SAMPLE_RATE
    if seconds > limit_sec:
        raise AudioRejected(
            413, f"audio is {seconds:.1f} s long; the limit is {limit_sec:g} s", "too_long"
        )


def require_bytes(data: bytes) -> None:
    if not data:
        raise AudioRejected(400, "empty file: no audio bytes were sent", "empty_audio")
