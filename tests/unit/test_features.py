"""The batch's mel features are faster-whisper's, window by window (measured here: equal to
the last bit; the bound allows another BLAS's rounding), zero after each window's frames."""

from __future__ import annotations

import numpy as np
from faster_whisper.feature_extractor import FeatureExtractor

from asr.features import frame_count, log_mel_batch


def test_batch_features_equal_each_window_alone() -> None:
    extractor = FeatureExtractor()
    rng = np.random.default_rng(7)
    lengths = [16000 * 7, 16000 * 7 + 123, 50_000, 16000 * 2, 16000 * 30, 3000]
    audios = [(0.1 * rng.standard_normal(n)).astype(np.float32) for n in lengths]
    audios[1][:8000] = 0.0  # digital silence: the normalisation's floor must match too
    feats, frames = log_mel_batch(extractor, audios, 3000)
    assert feats.shape == (len(audios), 80, 3000) and feats.dtype == np.float32
    for audio, got, n in zip(audios, feats, frames, strict=True):
        alone = extractor(audio)
        assert alone.shape[1] == n == frame_count(audio.size)
        kept = min(n, 3000)
        np.testing.assert_allclose(got[:, :kept], alone[:, :kept], rtol=0, atol=1e-5)
        assert not got[:, kept:].any()  # whisper's padding: zeros


def test_more_windows_than_one_chunk() -> None:
    extractor = FeatureExtractor()
    rng = np.random.default_rng(1)
    audios = [(0.1 * rng.standard_normal(8000 + 160 * i)).astype(np.float32) for i in range(20)]
    feats, frames = log_mel_batch(extractor, audios, 200)
    for i in (0, 15, 16, 19):
        np.testing.assert_allclose(
            feats[i, :, : min(frames[i], 200)], extractor(audios[i])[:, :200], rtol=0, atol=1e-5
        )
