"""Decoding what a request sends into 16 kHz mono float32: raw PCM16 (the gateway's windows)
directly, containers (wav, flac, ogg/opus, mp3, webm) through PyAV as faster-whisper does."""

from __future__ import annotations

import io
from typing import cast

import numpy as np

from contracts.audio import SAMPLE_RATE, pcm16_to_float


class AudioDecodeError(ValueError):
    """The bytes are not audio we can decode."""


def resample(audio: np.ndarray, from_rate: int, to_rate: int = SAMPLE_RATE) -> np.ndarray:
    if from_rate == to_rate:
        return audio
    import soxr

    resampled = soxr.resample(audio, from_rate, to_rate, quality="HQ")  # soxr has no type hints
    return cast(np.ndarray, resampled.astype(np.float32))


def decode_pcm_s16le(data: bytes, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    if len(data) % 2:
        raise AudioDecodeError("raw pcm_s16le must have an even number of bytes")
    return resample(pcm16_to_float(data), sample_rate)


def decode_file(data: bytes) -> np.ndarray:
    """Decode any container/codec PyAV knows to 16 kHz mono."""
    from faster_whisper.audio import decode_audio

    try:
        audio = decode_audio(io.BytesIO(data), sampling_rate=SAMPLE_RATE)
    except Exception as exc:  # PyAV raises many types (InvalidDataError, IndexError, ...)
        raise AudioDecodeError(f"cannot decode audio: {type(exc).__name__}") from exc
    return np.asarray(audio, dtype=np.float32)
