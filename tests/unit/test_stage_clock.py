"""Stage times per request: the proxies time the model calls and pass everything else through;
a batch's stage times are shared by its windows; each model thread keeps its own clock."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import pytest

from asr.stage_clock import STAGES, StageClock, TimedFeatures, TimedModel, shares, timed_model


class FakeCT2:
    """Stands in for ctranslate2.models.Whisper: each call sleeps a known time."""

    is_multilingual = True

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple]] = []

    def _call(self, name: str, seconds: float, *args: object) -> str:
        time.sleep(seconds)
        self.calls.append((name, args))
        return name

    def encode(self, features: object, to_cpu: bool = False) -> str:
        return self._call("encode", 0.02, features, to_cpu)

    def generate(self, encoded: object, prompts: object, **_: object) -> str:
        return self._call("generate", 0.03, encoded, prompts)

    def detect_language(self, encoded: object) -> str:
        return self._call("detect_language", 0.01, encoded)

    def align(self, *args: object, **_: object) -> str:
        return self._call("align", 0.01, *args)


def test_model_calls_are_timed_by_stage_and_passed_through() -> None:
    clock = StageClock()
    fake = FakeCT2()
    model = TimedModel(fake, clock)
    assert model.encode("f", to_cpu=True) == "encode"
    assert model.generate("e", [[1]], beam_size=5) == "generate"
    assert model.detect_language("e") == "detect_language"
    assert model.align("e", [1], [[2]], [3]) == "align"
    assert model.is_multilingual is True  # attributes pass through
    assert [name for name, _ in fake.calls] == ["encode", "generate", "detect_language", "align"]
    assert fake.calls[0][1] == ("f", True)
    totals = clock.read()
    assert set(totals) == set(STAGES)
    assert totals["encoder"] == pytest.approx(0.02, abs=0.015)
    # language detection runs the decoder: it counts there
    assert totals["decoder"] == pytest.approx(0.04, abs=0.02)
    assert totals["align"] == pytest.approx(0.01, abs=0.015)
    assert totals["features"] == 0.0
    clock.reset()
    assert clock.read() == dict.fromkeys(STAGES, 0.0)


def test_features_proxy_times_calls_and_keeps_attributes() -> None:
    clock = StageClock()

    class Extractor:
        hop_length = 160

        def __call__(self, audio: object, padding: int = 160) -> tuple[object, int]:
            time.sleep(0.01)
            return audio, padding

    timed = TimedFeatures(Extractor(), clock)
    assert timed("a", padding=0) == ("a", 0)
    assert timed.hop_length == 160
    assert clock.read()["features"] >= 0.009


def test_timed_model_wraps_a_whisper_model_once() -> None:
    clock = StageClock()
    whisper = SimpleNamespace(model=FakeCT2(), feature_extractor=lambda audio: audio)
    timed_model(whisper, clock)
    inner = whisper.model
    timed_model(whisper, clock)
    assert whisper.model is inner and isinstance(inner, TimedModel)
    assert isinstance(whisper.feature_extractor, TimedFeatures)


def test_each_thread_has_its_own_clock() -> None:
    clock = StageClock()
    seen: dict[str, dict[str, float]] = {}

    def run(name: str, seconds: float) -> None:
        clock.reset()
        with clock.measure("decoder"):
            time.sleep(seconds)
        seen[name] = clock.read()

    threads = [threading.Thread(target=run, args=(n, s)) for n, s in (("a", 0.01), ("b", 0.05))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen["a"]["decoder"] < 0.04 <= seen["b"]["decoder"]


def test_a_batch_shares_its_stage_times_equally() -> None:
    totals = {"features": 0.016, "encoder": 1.6, "decoder": 3.2, "align": 0.32}
    assert shares(totals, 16) == {
        "features": 1.0,
        "encoder": 100.0,
        "decoder": 200.0,
        "align": 20.0,
    }
    assert shares(totals, 0)["encoder"] == 1600.0  # no division by zero
