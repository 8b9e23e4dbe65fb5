"""Convert client audio at the edge to the one internal format: 16 kHz mono PCM16 per channel.

Frames may end mid-sample (or mid-frame for stereo): the remainder waits for the next frame.
Resampling is streaming (soxr.ResampleStream keeps filter state between frames), so frame edges
do not click.
"""

from __future__ import annotations

import numpy as np
import soxr

from contracts.audio import SAMPLE_RATE, float_to_pcm16

BYTES_PER_SAMPLE = {"pcm_s16le": 2, "pcm_f32le": 4, "mulaw": 1, "alaw": 1}


def _mulaw_table() -> np.ndarray:
    codes = ~np.arange(256, dtype=np.uint8)
    sign = codes & 0x80
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = ((mantissa.astype(np.int32) << 3) + 0x84) << exponent
    values = np.where(sign != 0, 0x84 - magnitude, magnitude - 0x84)
    return (values / 32768.0).astype(np.float32)


def _alaw_table() -> np.ndarray:
    codes = np.arange(256, dtype=np.uint8) ^ 0x55
    sign = codes & 0x80
    exponent = (codes >> 4) & 0x07
    mantissa = (codes & 0x0F).astype(np.int32)
    magnitude = np.where(
        exponent == 0, (mantissa << 4) + 8, ((mantissa << 4) + 0x108) << np.maximum(exponent - 1, 0)
    )
    values = np.where(sign != 0, magnitude, -magnitude)
    return (values / 32768.0).astype(np.float32)


MULAW = _mulaw_table()
ALAW = _alaw_table()


class EdgeDecoder:
    def __init__(self, encoding: str, sample_rate: int, channels: int) -> None:
        self.encoding = encoding
        self.sample_rate = sample_rate
        self.channels = channels
        self.frame_bytes = BYTES_PER_SAMPLE[encoding] * channels
        self._carry = b""
        self._resamplers = (
            [
                soxr.ResampleStream(sample_rate, SAMPLE_RATE, 1, dtype="float32", quality="HQ")
                for _ in range(channels)
            ]
            if sample_rate != SAMPLE_RATE
            else None
        )

    def feed(self, data: bytes) -> list[np.ndarray]:
        """Decode one client frame; returns int16 arrays at 16 kHz, one per channel."""
        if self._carry:
            data = self._carry + data
        usable = len(data) - len(data) % self.frame_bytes
        self._carry = data[usable:]
        return self._convert(np.frombuffer(data, dtype=np.uint8, count=usable), last=False)

    def flush(self) -> list[np.ndarray]:
        """End of stream: drain the resampler (a dangling partial sample is dropped)."""
        self._carry = b""
        return self._convert(np.zeros(0, dtype=np.uint8), last=True)

    def _convert(self, raw: np.ndarray, last: bool) -> list[np.ndarray]:
        if self.encoding == "pcm_s16le":
            if self._resamplers is None:
                samples16 = raw.view("<i2").reshape(-1, self.channels)
                return [np.ascontiguousarray(samples16[:, c]) for c in range(self.channels)]
            samples = raw.view("<i2").astype(np.float32) / 32768.0
        elif self.encoding == "pcm_f32le":
            samples = np.nan_to_num(
                raw.view("<f4").astype(np.float32), nan=0.0, posinf=1.0, neginf=-1.0
            )
        elif self.encoding == "mulaw":
            samples = MULAW[raw]
        else:
            samples = ALAW[raw]
        per_channel = samples.reshape(-1, self.channels)
        out: list[np.ndarray] = []
        for c in range(self.channels):
            mono = np.ascontiguousarray(per_channel[:, c])
            if self._resamplers is not None:
                mono = self._resamplers[c].resample_chunk(mono, last=last)
            out.append(float_to_pcm16(mono))
        return out
