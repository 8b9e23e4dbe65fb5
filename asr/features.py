"""Log-mel features of a whole batch of windows in one pass.

The same numbers as faster-whisper's `FeatureExtractor` gives each window alone (its padding,
Hann window, FFT, mel filters and per-window normalisation), computed as one framing, one FFT
and one matrix product for the batch instead of one of each per window. NumPy on the CPU: doing
it on the GPU would need torch or CuPy, which the worker does not carry (CTranslate2 has no
feature extraction); at a few milliseconds per window it is not where a GPU batch's time goes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

PAD_SAMPLES = 160  # FeatureExtractor's default `padding`: one hop of zeros after the audio
CHUNK = 16  # windows per FFT: bounds the framed copy (16 x 30 s = 77 MB of float32)


def frame_count(samples: int, hop: int = 160) -> int:
    """Feature frames FeatureExtractor returns for `samples` (with its padding)."""
    return (samples + PAD_SAMPLES) // hop


def log_mel_batch(
    extractor: Any, audios: list[np.ndarray], max_frames: int
) -> tuple[np.ndarray, list[int]]:
    """([B, n_mels, max_frames] float32, frames per window): each window's features from frame
    0, zeros after them (whisper's padding), cut at max_frames; the frame counts are those of
    FeatureExtractor's output (so `frames - 1` is the audio's own frames, as elsewhere)."""
    filters = extractor.mel_filters
    out = np.zeros((len(audios), filters.shape[0], max_frames), dtype=np.float32)
    frames = [frame_count(a.size, extractor.hop_length) for a in audios]
    for first in range(0, len(audios), CHUNK):
        chunk = audios[first : first + CHUNK]
        logs = _log_mel(extractor, chunk)
        for i, log in enumerate(logs):
            n = min(frames[first + i], max_frames)
            out[first + i, :, :n] = log[:, :n]
    return out, frames


def _log_mel(extractor: Any, audios: list[np.ndarray]) -> list[np.ndarray]:
    n_fft, hop = extractor.n_fft, extractor.hop_length
    half = n_fft // 2
    rows = [
        np.pad(np.pad(a.astype(np.float32, copy=False), (0, PAD_SAMPLES)), half, mode="reflect")
        for a in audios
    ]
    counts = [1 + (r.size - n_fft) // hop for r in rows]
    width = max(r.size for r in rows)
    signal = np.zeros((len(rows), width), dtype=np.float32)
    for i, row in enumerate(rows):
        signal[i, : row.size] = row
    n = max(counts)
    framed = np.lib.stride_tricks.as_strided(
        signal,
        (len(rows), n, n_fft),
        (signal.strides[0], hop * signal.strides[1], signal.strides[1]),
        writeable=False,
    )
    window = np.hanning(n_fft + 1)[:-1].astype(np.float32)
    spectrum = np.fft.rfft(framed * window, n=n_fft, axis=-1).astype(np.complex64)
    power = np.abs(spectrum) ** 2  # [B, frames, bins]
    # one matrix product for every frame of the batch: [B * frames, bins] @ [bins, mels]
    mel = (power.reshape(-1, power.shape[-1]) @ extractor.mel_filters.T).reshape(len(rows), n, -1)
    out = []
    for i, count in enumerate(counts):
        # the last frame is dropped, as FeatureExtractor does (stft[..., :-1]); each window is
        # normalised on its own
        log = np.log10(np.clip(mel[i, : count - 1].T, a_min=1e-10, a_max=None))
        log = np.maximum(log, log.max() - 8.0)
        out.append((log + 4.0) / 4.0)
    return out
