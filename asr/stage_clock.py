"""Where a model call's time goes: mel features, encoder, decoder, alignment.

Every request's model call runs whole on one model thread, so a thread-local clock holds that
call's stage times. The clock sees the model through thin proxies around faster-whisper's
feature extractor and CTranslate2's Whisper object (`timed_model`), so the default path keeps
calling faster-whisper exactly as before (its text cannot change) and the batched path is
timed by the same proxies. On CUDA a CTranslate2 call may return before its kernels finish
(the encoder's output stays on the GPU), so there a stage boundary can shift time into the
next stage; the sum stays right.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

STAGES = ("features", "encoder", "decoder", "align")
# CTranslate2 Whisper methods and the stage they count towards (language detection runs the
# decoder for one step on an encoded input)
MODEL_STAGES = {
    "encode": "encoder",
    "generate": "decoder",
    "detect_language": "decoder",
    "align": "align",
}


class StageClock:
    """Seconds per stage on the calling thread since its last `reset()`."""

    def __init__(self) -> None:
        self._local = threading.local()

    def _totals(self) -> dict[str, float]:
        totals = getattr(self._local, "totals", None)
        if totals is None:
            totals = self._local.totals = dict.fromkeys(STAGES, 0.0)
        return totals

    def reset(self) -> None:
        self._local.totals = dict.fromkeys(STAGES, 0.0)

    def read(self) -> dict[str, float]:
        return dict(self._totals())

    @contextmanager
    def measure(self, stage: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self._totals()[stage] += time.perf_counter() - started


class TimedModel:
    """CTranslate2's Whisper with its model calls timed; everything else passes through."""

    def __init__(self, model: Any, clock: StageClock) -> None:
        self._model = model
        self._clock = clock

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._model, name)
        stage = MODEL_STAGES.get(name)
        if stage is None or not callable(attribute):
            return attribute

        def timed(*args: Any, **kwargs: Any) -> Any:
            with self._clock.measure(stage):
                return attribute(*args, **kwargs)

        return timed


class TimedFeatures:
    """faster-whisper's FeatureExtractor with its calls timed (its attributes pass through)."""

    def __init__(self, extractor: Any, clock: StageClock) -> None:
        self._extractor = extractor
        self._clock = clock

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self._clock.measure("features"):
            return self._extractor(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._extractor, name)


def timed_model(whisper: Any, clock: StageClock) -> None:
    """Put the proxies into a faster_whisper.WhisperModel (idempotent)."""
    if not isinstance(whisper.model, TimedModel):
        whisper.model = TimedModel(whisper.model, clock)
    if not isinstance(whisper.feature_extractor, TimedFeatures):
        whisper.feature_extractor = TimedFeatures(whisper.feature_extractor, clock)


def shares(totals: dict[str, float], items: int) -> dict[str, float]:
    """Each item's share of a call's stage times, in ms (a batch's windows share equally)."""
    n = max(1, items)
    return {stage: round(totals.get(stage, 0.0) * 1000 / n, 2) for stage in STAGES}
