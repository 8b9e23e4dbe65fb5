"""Log-mel features of a whole batch of windows in one call.

The same numbers as faster-whisper's `FeatureExtractor` gives each window alone, to the bit (its
padding, Hann window, FFT, mel filters and per-window normalisation), written straight into the
batch's encoder input ([B, n_mels, 3000], zeros after each window) instead of one array per
window stacked afterwards. Inside the call the FFT runs a few windows at a time (CHUNK): one
FFT over a batch of 16 windows' frames (18 MB of float32 for 7 s windows, as much again of
spectrum) ran at half the speed of one window at a time here, out of the CPU's cache. NumPy on
the CPU, beside a GPU too: on the GPU it would need torch or CuPy, which the worker does not
carry (CTranslate2 has no feature extraction). What it costs per window: the worker load
profile's `features` column (docs/benchmarks.md).
"""

from __future__ import annotations

from typing import Any

import numpy as np

# NumPy's BLAS on one thread in the worker's process (asr/__main__.py) and the benchmark's
# direct runs: its only work there is these small mel products, and its spinning threads beside
# CTranslate2's made them slow now and then (16 windows' features under load: 5.3 ms per window
# with one thread, 19 ms with two; the same numbers either way)
BLAS_ENV = {"OPENBLAS_NUM_THREADS": "1"}
PAD_SAMPLES = 160  # FeatureExtractor's default `padding`: one hop of zeros after the audio
# windows per FFT (measured, 16 windows of 7 s, one BLAS thread: 1.6 ms per window one at a
# time, 1.9 by 2, 2.1 by 4, 3.0 by 8 or 16)
CHUNK = 1


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
    # each row: the audio, PAD_SAMPLES of zeros, reflected `half` samples at both ends
    # (FeatureExtractor's np.pad calls, written into the batch's buffer directly)
    sizes = [a.size + PAD_SAMPLES + 2 * half for a in audios]
    counts = [1 + (size - n_fft) // hop for size in sizes]
    signal = np.zeros((len(audios), max(sizes)), dtype=np.float32)
    for i, audio in enumerate(audios):
        _reflect_padded(signal[i, : sizes[i]], audio, half)
    n = max(counts)
    framed = np.lib.stride_tricks.as_strided(
        signal,
        (len(audios), n, n_fft),
        (signal.strides[0], hop * signal.strides[1], signal.strides[1]),
        writeable=False,
    )
    window = np.hanning(n_fft + 1)[:-1].astype(np.float32)
    spectrum = np.fft.rfft(framed * window, n=n_fft, axis=-1).astype(np.complex64, copy=False)
    power = np.abs(spectrum) ** 2  # [B, frames, bins]
    out = []
    for i, count in enumerate(counts):
        # the last frame is dropped, as FeatureExtractor does (stft[..., :-1]); the product
        # takes the extractor's own operand layout ([bins, frames], transposed), so BLAS
        # rounds exactly as it does for a window alone, whatever its batch mates
        mel = extractor.mel_filters @ power[i, : count - 1].T
        log = np.log10(np.clip(mel, a_min=1e-10, a_max=None))
        log = np.maximum(log, log.max() - 8.0)
        out.append((log + 4.0) / 4.0)
    return out


def _reflect_padded(row: np.ndarray, audio: np.ndarray, half: int) -> None:
    """row[:] = np.pad(np.pad(audio, (0, PAD_SAMPLES)), half, mode="reflect")."""
    padded = audio.size + PAD_SAMPLES
    if padded <= half:  # shorter than the reflection: numpy's repeated reflection
        row[:] = np.pad(np.pad(audio, (0, PAD_SAMPLES)), half, mode="reflect")
        return
    row[half : half + audio.size] = audio
    row[half + audio.size : half + padded] = 0.0
    body = row[half : half + padded]
    row[:half] = body[half:0:-1]
    row[half + padded :] = body[-2 : -half - 2 : -1]
