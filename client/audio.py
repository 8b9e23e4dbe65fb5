"""Read any audio file as 16 kHz mono PCM16 bytes (through faster-whisper's PyAV decoder when it
is installed, else 16 kHz mono WAV only)."""

from __future__ import annotations

import wave
from pathlib import Path

from contracts.audio import float_to_pcm16


def read_audio_pcm16(path: str | Path) -> bytes:
    try:
        from faster_whisper.audio import decode_audio
    except ImportError:
        with wave.open(str(path), "rb") as wav:
            if (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) != (16000, 1, 2):
                raise ValueError(
                    "without faster-whisper installed only 16 kHz mono PCM16 WAV"
                ) from None
            return wav.readframes(wav.getnframes())
    audio = decode_audio(str(path), sampling_rate=16000)
    return float_to_pcm16(audio).tobytes()
