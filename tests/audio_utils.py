"""Synthetic signals and WAV helpers generated in the tests themselves."""

from __future__ import annotations

import io
import wave

import numpy as np

from contracts.audio import float_to_pcm16

SR = 16_000


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * SR), dtype=np.float32)


def white_noise(seconds: float, dbfs: float, seed: int = 0) -> np.ndarray:
    """White noise whose RMS is `dbfs` relative to full scale."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(int(seconds * SR))
    noise *= 10 ** (dbfs / 20) / np.sqrt(np.mean(noise**2))
    return noise.astype(np.float32)


def tone(seconds: float, freq: float = 440.0, dbfs: float = -20.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (10 ** (dbfs / 20) * np.sqrt(2) * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def to_pcm16(audio: np.ndarray) -> bytes:
    return float_to_pcm16(audio).tobytes()


def wav_bytes(audio: np.ndarray, rate: int = SR, channels: int = 1) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(to_pcm16(audio))
    return buf.getvalue()


def read_wav(path: str) -> np.ndarray:
    with wave.open(str(path), "rb") as wav:
        assert wav.getframerate() == SR and wav.getnchannels() == 1 and wav.getsampwidth() == 2
        return np.frombuffer(wav.readframes(wav.getnframes()), "<i2").astype(np.float32) / 32768


def mulaw_encode(audio: np.ndarray) -> bytes:
    """G.711 mu-law (the inverse of the gateway's table), for test inputs."""
    samples = (np.clip(audio, -1, 1) * 32767).astype(np.int32)
    sign = (samples < 0).astype(np.int32)
    magnitude = np.minimum(np.abs(samples), 32635) + 0x84
    exponent = np.clip(np.floor(np.log2(magnitude)).astype(np.int32) - 7, 0, 7)
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return (~((sign << 7) | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8).tobytes()
