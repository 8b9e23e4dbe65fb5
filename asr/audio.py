"""Audio in the one internal format: float32 / int16 mono at 16 kHz.

Decoding of containers goes through PyAV (what faster-whisper uses); raw PCM is read directly.
"""

from __future__ import annotations

import io

import numpy as np

SAMPLE_RATE = 16_000


class AudioDecodeError(ValueError):
    """The bytes are not audio we can decode."""


def pcm16_to_float(pcm: bytes | bytearray | memoryview | np.ndarray) -> np.ndarray:
    samples = pcm if isinstance(pcm, np.ndarray) else np.frombuffer(pcm, dtype="<i2")
    return samples.astype(np.float32) / 32768.0


def float_to_pcm16(audio: np.ndarray) -> np.ndarray:
    return (np.clip(audio, -1.0, 32767 / 32768) * 32768.0).astype("<i2")


def resample(audio: np.ndarray, from_rate: int, to_rate: int = SAMPLE_RATE) -> np.ndarray:
    if from_rate == to_rate:
        return audio
    import soxr

    return soxr.resample(audio, from_rate, to_rate, quality="HQ").astype(np.float32)


def decode_pcm_s16le(data: bytes, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    if len(data) % 2:
        raise AudioDecodeError("raw pcm_s16le must have an even number of bytes")
    return resample(pcm16_to_float(data), sample_rate)


def decode_file(data: bytes) -> np.ndarray:
    """Decode any container/codec PyAV knows (wav, flac, ogg/opus, mp3, webm) to 16 kHz mono."""
    from faster_whisper.audio import decode_audio

    try:
        audio = decode_audio(io.BytesIO(data), sampling_rate=SAMPLE_RATE)
    except Exception as exc:  # PyAV raises many types (InvalidDataError, IndexError, ...)
        raise AudioDecodeError(f"cannot decode audio: {type(exc).__name__}") from exc
    return np.asarray(audio, dtype=np.float32)
