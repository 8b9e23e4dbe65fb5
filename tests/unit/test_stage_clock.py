"""Stage times per request: the proxies time the model calls and pass everything else through;
a batch's stage times are shared by its windows; each model thread keeps its own clock.

The clock reads a fake `perf_counter` that only the fakes move, so every figure is exact."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

import asr.stage_clock
from asr.stage_clock import STAGES, StageClock, TimedFeatures, TimedModel, shares, timed_model


class FakeTime:
    """`perf_counter` for asr.stage_clock: time passes only when a fake call says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def perf_counter(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def fake_time(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTime]:
    fake = FakeTime()
    monkeypatch.setattr(asr.stage_clock, "time", fake)
    yield fake


class FakeCT2:
    """Stands in for ctranslate2.models.Whisper: each call takes a known time."""

    is_multilingual = True

    def __init__(self, clock: FakeTime) -> None:
        self.calls: list[tuple[str, tuple]] = []
        self.clock = clock

    def _call(self, name: str, seconds: float, *args: object) -> str:
        self.clock.now += seconds
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


def test_model_calls_are_timed_by_stage_and_passed_through(fake_time: FakeTime) -> None:
    clock = StageClock()
    fake = FakeCT2(fake_time)
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
    assert totals["encoder"] == pytest.approx(0.02, abs=1e-9)
    # language detection runs the decoder: it counts there
    assert totals["decoder"] == pytest.approx(0.04, abs=1e-9)
    assert totals["align"] == pytest.approx(0.01, abs=1e-9)
    assert totals["features"] == 0.0
    clock.reset()
    assert clock.read() == dict.fromkeys(STAGES, 0.0)


def test_features_proxy_times_calls_and_keeps_attributes(fake_time: FakeTime) -> None:
    clock = StageClock()

    class Extractor:
        hop_length = 160

        def __call__(self, audio: object, padding: int = 160) -> tuple[object, int]:
            fake_time.now += 0.01
            return audio, padding

    timed = TimedFeatures(Extractor(), clock)
    assert timed("a", padding=0) == ("a", 0)
    assert timed.hop_length == 160
    assert clock.read()["features"] == pytest.approx(0.01, abs=1e-9)


def test_timed_model_wraps_a_whisper_model_once(fake_time: FakeTime) -> None:
    clock = StageClock()
    whisper = SimpleNamespace(model=FakeCT2(fake_time), feature_extractor=lambda audio: audio)
    timed_model(whisper, clock)
    inner = whisper.model
    timed_model(whisper, clock)
    assert whisper.model is inner and isinstance(inner, TimedModel)
    assert isinstance(whisper.feature_extractor, TimedFeatures)


def test_each_thread_has_its_own_clock(fake_time: FakeTime) -> None:
    """A model thread's stage times are its own: another thread's call, even one that overlaps
    it, neither adds to them nor resets them."""
    clock = StageClock()
    inside, go_on = threading.Event(), threading.Event()
    seen: dict[str, float] = {}

    def other_thread() -> None:
        clock.reset()
        with clock.measure("decoder"):
            fake_time.now += 0.05
            inside.set()  # the main thread measures while this call is still open
            go_on.wait(5)
        seen["other"] = clock.read()["decoder"]

    clock.reset()
    thread = threading.Thread(target=other_thread)
    thread.start()
    assert inside.wait(5)
    with clock.measure("encoder"):
        fake_time.now += 0.01
    go_on.set()
    thread.join(5)
    # the other call spans the main thread's 0.01 s too; the main thread saw no decoder time
    assert seen["other"] == pytest.approx(0.06, abs=1e-9)
    assert clock.read()["decoder"] == 0.0
    assert clock.read()["encoder"] == pytest.approx(0.01, abs=1e-9)


def test_a_batch_shares_its_stage_times_equally() -> None:
    totals = {"features": 0.016, "encoder": 1.6, "decoder": 3.2, "align": 0.32}
    assert shares(totals, 16) == {
        "features": 1.0,
        "encoder": 100.0,
        "decoder": 200.0,
        "align": 20.0,
    }
    assert shares(totals, 0)["encoder"] == 1600.0  # no division by zero
