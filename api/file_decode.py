"""Decoding an uploaded file (wav, flac, ogg/opus, mp3, webm, ... anything FFmpeg reads) to
16 kHz mono, through PyAV directly."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

from contracts.audio import SAMPLE_RATE, AudioRejected, pcm16_to_float

if TYPE_CHECKING:  # PyAV itself is imported when a file is decoded
    from av.audio.frame import AudioFrame
    from av.container import InputContainer


def decode_file(data: bytes) -> np.ndarray:
    """float32 samples at 16 kHz; AudioRejected (415) when the bytes are not audio."""
    import av

    pieces: list[np.ndarray] = []
    try:
        with av.open(io.BytesIO(data), mode="r", metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise AudioRejected(415, "cannot decode audio: no audio stream", "bad_audio")
            resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
            for frame in _frames(container):
                pieces.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(frame))
            pieces.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(None))
    except AudioRejected:
        raise
    except Exception as exc:  # PyAV raises many types (InvalidDataError, IndexError, ...)
        raise AudioRejected(415, f"cannot decode audio: {type(exc).__name__}", "bad_audio") from exc
    if not pieces:
        return np.zeros(0, dtype=np.float32)
    return pcm16_to_float(np.concatenate(pieces))


def _frames(container: InputContainer) -> Iterator[AudioFrame]:
    """The audio frames, skipping the ones a damaged file cannot decode (as faster-whisper
    does)."""
    import av

    packets = container.demux(audio=0)
    for packet in packets:
        try:
            yield from packet.decode()
        except av.error.InvalidDataError:
            continue
