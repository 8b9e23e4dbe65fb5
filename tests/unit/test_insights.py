"""Insights building blocks with fake inputs: words, stop words, keywords, the local summary,
the speech meter against faster-whisper's offline VAD, the tracker's figures and schedule,
provider errors, the OpenAI-compatible request and reply, and the provider fallback."""

from __future__ import annotations

import asyncio
import json
import socket

import httpx
import numpy as np
import pytest

from api.config import GatewaySettings
from api.insights import (
    InsightsInput,
    InsightsTracker,
    ProviderError,
    ProviderResult,
    make_provider,
)
from api.insights.local import LocalProvider, local_summary
from api.insights.openai import OpenAIProvider
from api.insights.speech import PAUSE_MS, SpeechMeter
from api.insights.text import KeywordCounter, clip, stop_words, summarize, words
from api.session_config import build_session_config
from contracts.events import InsightsEvent, StartMessage, TranscriptEvent, server_event
from tests.async_utils import settle
from tests.audio_utils import read_wav, silence, to_pcm16

TEXT = (
    "Construída pelos egípcios no século 3 a.C., a grande pirâmide é uma das muitas grandes "
    "estruturas de pirâmide. Os faraós mortos foram honrados. E então?"
)


# ---- words, stop words, keywords -------------------------------------------------------------


def test_words_are_letters_only() -> None:
    assert words("Construída no século 3 a.C., d'água guarda-chuva!") == [
        "construída",
        "no",
        "século",
        "a",
        "c",
        "d'água",
        "guarda-chuva",
    ]


def test_stop_words_ship_with_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("stop words must not touch the network")

    monkeypatch.setattr(socket, "socket", no_network)
    stop_words.cache_clear()
    pt, en, either = stop_words("pt"), stop_words("en"), stop_words(None)
    assert {"uma", "das", "pelos", "é", "de"} <= pt and "pirâmide" not in pt
    assert {"the", "and", "of"} <= en and "the" not in pt
    assert pt | en == either
    assert stop_words("xx") == either  # a language without a list: both


def test_keywords_rank_by_count_then_first_use() -> None:
    counter = KeywordCounter()
    counter.add(TEXT)
    counter.add("A pirâmide de Gizé. Os egípcios.")
    top = counter.top(5, "pt")
    assert top == ["pirâmide", "egípcios", "construída", "século", "grande"]
    assert not set(counter.top(50, "pt")) & stop_words("pt")
    assert all(len(word) >= 3 for word in counter.top(50, "pt"))
    english = KeywordCounter()
    english.add("The order of the pizza and the order of the drinks")
    assert english.top(3, "en") == ["order", "pizza", "drinks"]


# ---- the local summary -----------------------------------------------------------------------


def test_local_summary_is_deterministic_and_bounded() -> None:
    long_text = " ".join(f"Frase {i} sobre o pedido de pizza número {i}." for i in range(200))
    for text in (TEXT, long_text, "sem pontuação nenhuma " * 100):
        first = local_summary(text, "pt", 120)
        assert first == local_summary(text, "pt", 120)
        assert 0 < len(first) <= 120
    assert local_summary("", "pt", 120) == ""


def test_local_summary_keeps_the_sentences_about_the_topic_in_order() -> None:
    text = (
        "Bom dia. Quero cancelar o pedido de pizza. Tudo bem? "
        "O pedido de pizza chegou frio e o pedido estava errado. Obrigado."
    )
    counter = KeywordCounter()
    counter.add(text)
    summary = summarize(text, counter.counts, "pt", 200)
    assert summary == (
        "Quero cancelar o pedido de pizza. O pedido de pizza chegou frio e o pedido estava errado."
    )


def test_clip_cuts_at_a_word() -> None:
    assert clip("uma frase curta", 50) == "uma frase curta"
    assert clip("uma frase bem mais longa do que cabe", 20) == "uma frase bem mais…"


# ---- speech time -----------------------------------------------------------------------------


async def test_speech_meter_matches_the_offline_vad(manifest) -> None:
    """Fed in 300 ms frames, scored by the channel's VAD at odd moments: the live figure is the
    offline one."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    from api.core.speech import SpeechTimeline
    from api.core.track import AudioTrack
    from api.vad_model import find_model, load_model
    from api.vad_stream import StreamingVad

    audio = read_wav(manifest["fleurs-pt-002"].path)
    pcm = np.frombuffer(to_pcm16(audio), "<i2")
    model = load_model(find_model())
    meter, track, vad = (
        SpeechMeter(),
        AudioTrack(keep_sec=20),
        StreamingVad(model, SpeechTimeline()),
    )
    vad.listeners.append(meter.observe)
    for index, start in enumerate(range(0, pcm.size, 4800)):
        meter.push(pcm[start : start + 4800])
        track.append(pcm[start : start + 4800], 0.0)
        if index % 3 == 0:
            await vad.update(track)
    await vad.update(track)
    meter.finish()
    stamps = get_speech_timestamps(
        audio, VadOptions(min_silence_duration_ms=PAUSE_MS, speech_pad_ms=0)
    )
    offline = sum(s["end"] - s["start"] for s in stamps) / 16000
    assert meter.speech_sec == pytest.approx(offline, abs=0.05)
    assert meter.audio_sec == pytest.approx(audio.size / 16000)
    for cut in (0, 16000, 50000, 90000, audio.size):
        before = sum(max(0, min(s["end"], cut) - s["start"]) for s in stamps)
        assert meter.speech_until(cut) == pytest.approx(before, abs=800)


async def test_speech_meter_hears_no_speech_in_silence() -> None:
    meter = SpeechMeter()
    meter.push(np.frombuffer(to_pcm16(silence(2.0)), "<i2"))
    meter.observe(0, np.zeros(62, dtype=np.float32))
    meter.finish()
    assert meter.speech_sec == 0.0 and meter.audio_sec == 2.0


async def test_speech_meter_leaves_out_context_before_its_origin() -> None:
    """A new session continuing a lost one gets context audio before its timeline: the VAD
    scores it (chunks aligned on the origin), the meter counts only what follows."""
    chunk = 512
    meter = SpeechMeter(origin=10 * chunk)
    meter.push(np.zeros(4 * chunk, dtype=np.int16))  # the session's own audio only
    probs = np.array([0.9] * 10 + [0.1, 0.1, 0.9, 0.9], dtype=np.float32)
    meter.observe(0, probs)  # ten chunks of speech in the context, then the session
    meter.finish()
    assert meter.speech_sec == pytest.approx(2 * chunk / 16000)
    assert meter.audio_sec == pytest.approx(4 * chunk / 16000)


# ---- the tracker -----------------------------------------------------------------------------


class FakeMeter:
    def __init__(self, speech: float, audio: float) -> None:
        self.speech_sec, self.audio_sec = speech, audio

    def speech_until(self, sample: int) -> int:
        return min(sample, round(self.speech_sec * 16000))  # as if all speech came first

    def push(self, samples: np.ndarray) -> None:
        pass

    def finish(self) -> None:
        pass


class FakeProvider:
    name = "fake"

    def __init__(self, delay: float = 0.0, fail: Exception | None = None) -> None:
        self.delay, self.fail, self.calls, self.closed = delay, fail, 0, False

    async def analyse(self, data: InsightsInput) -> ProviderResult:
        self.calls += 1
        await asyncio.sleep(self.delay)
        if self.fail:
            raise self.fail
        return ProviderResult(summary=f"{len(data.transcript.split())} words", keywords=["x"])

    async def aclose(self) -> None:
        self.closed = True


def transcript(text: str, channel: int = 0, end: float = 1.0) -> TranscriptEvent:
    tokens = text.split()
    return TranscriptEvent.model_validate(
        {
            "segment_id": 0,
            "text": text,
            "words": [{"word": w, "start": 0.0, "end": 0.1, "probability": 1.0} for w in tokens],
            "start": 0.0,
            "end": end,
            "language": "pt",
            "channel": channel,
            "timing": {"window_sec": 1.0, "queue_ms": 0, "inference_ms": 0, "batch_ms": 1},
        }
    )


def tracker_with(
    provider: object, channels: int = 1, interval: float = 5.0, timeout: float = 1.0
) -> tuple[InsightsTracker, list[InsightsEvent]]:
    sent: list[InsightsEvent] = []
    tracker = InsightsTracker(
        "test",
        channels,
        provider,  # type: ignore[arg-type]  # a fake of the provider protocol
        sent.append,  # type: ignore[arg-type]  # collects the events the tracker emits
        lambda: "pt",
        interval_sec=interval,
        timeout_sec=timeout,
    )
    return tracker, sent


def test_figures_mono_and_stereo() -> None:
    tracker, _ = tracker_with(FakeProvider())
    tracker.meters = [FakeMeter(speech=30.0, audio=60.0)]  # type: ignore[list-item]  # a FakeMeter for the SpeechMeter
    tracker.add_transcript(transcript("um " * 75))
    figures = tracker.figures(final=True)
    assert figures["speaking_sec"] == 30.0 and figures["word_count"] == 75
    assert figures["words_per_minute"] == 150.0 and figures["silence_ratio"] == 0.5
    assert figures["channels"] is None

    stereo, _ = tracker_with(FakeProvider(), channels=2)
    stereo.meters = [FakeMeter(20.0, 60.0), FakeMeter(10.0, 60.0)]  # type: ignore[list-item]  # a FakeMeter for the SpeechMeter
    stereo.add_transcript(transcript("a " * 40, channel=0))
    stereo.add_transcript(transcript("b " * 30, channel=1))
    figures = stereo.figures(final=True)
    assert figures["speaking_sec"] == 30.0 and figures["silence_ratio"] == 0.5
    assert figures["words_per_minute"] == 140.0
    agent, customer = figures["channels"]  # type: ignore[misc]  # figures() types its values as object
    assert (agent.words_per_minute, customer.words_per_minute) == (120.0, 180.0)
    assert (agent.silence_ratio, customer.silence_ratio) == (0.667, 0.833)


def test_pace_counts_only_the_transcribed_speech_until_the_end() -> None:
    """Mid-session the VAD is ahead of the transcript (a window is at the worker): the pace
    is words over the speech up to the last transcribed word, at the end over all of it."""
    tracker, _ = tracker_with(FakeProvider())
    tracker.meters = [FakeMeter(speech=30.0, audio=40.0)]  # type: ignore[list-item]  # a FakeMeter for the SpeechMeter
    tracker.add_transcript(transcript("um " * 50, end=20.0))
    running = tracker.figures()
    assert running["speaking_sec"] == 30.0 and running["words_per_minute"] == 150.0
    assert tracker.figures(final=True)["words_per_minute"] == 100.0


def test_pace_needs_a_second_of_speech() -> None:
    tracker, _ = tracker_with(FakeProvider())
    tracker.meters = [FakeMeter(speech=0.5, audio=0.0)]  # type: ignore[list-item]  # a FakeMeter for the SpeechMeter
    tracker.add_transcript(transcript("oi"))
    figures = tracker.figures()
    assert figures["words_per_minute"] is None and figures["silence_ratio"] is None


async def test_periodic_events_then_one_final() -> None:
    provider = FakeProvider()
    tracker, sent = tracker_with(provider, interval=0.05)
    tracker.start()
    tracker.add_transcript(transcript("a grande pirâmide"))
    await settle(lambda: len(sent) >= 3)  # periodic events, every 50 ms
    final = await tracker.finish()
    assert await tracker.finish() is None  # once only
    assert final is sent[-1] and final.final and not any(e.final for e in sent[:-1])
    assert len(sent) - 1 >= 3
    assert final.summary == "3 words" and final.keywords == ["x"]
    assert provider.calls == 1  # the text did not change: the answer is reused
    assert provider.closed
    for event in sent:
        server_event.validate_python(event.model_dump())


async def test_provider_failures_become_error_events() -> None:
    cases = [
        (FakeProvider(fail=ProviderError("fake: HTTP 500")), "fake: HTTP 500"),
        (FakeProvider(delay=5.0), "fake: timed out after 0.05 s"),
        (FakeProvider(fail=KeyError("bug")), "fake: failed (KeyError)"),
    ]
    for provider, error in cases:
        tracker, _ = tracker_with(provider, timeout=0.05)
        tracker.meters = [FakeMeter(speech=6.0, audio=10.0)]  # type: ignore[list-item]  # a FakeMeter for the SpeechMeter
        tracker.add_transcript(transcript("a grande pirâmide do egito"))
        event = await tracker.finish()
        assert event is not None and event.error == error and event.final
        # the local figures are still there
        assert event.speaking_sec == 6.0 and event.silence_ratio == 0.4
        assert event.keywords == ["grande", "pirâmide", "egito"]


async def test_a_failed_call_is_retried_next_time() -> None:
    provider = FakeProvider(fail=ProviderError("fake: HTTP 503"))
    tracker, sent = tracker_with(provider, interval=0.03)
    tracker.add_transcript(transcript("texto"))
    tracker.start()
    await settle(lambda: len(sent) >= 1)  # the first periodic call failed
    provider.fail = None
    final = await tracker.finish()
    assert sent[0].error == "fake: HTTP 503"
    assert final is not None and final.error is None and final.summary == "1 words"


async def test_a_tracker_bug_never_costs_the_session_its_end() -> None:
    class BrokenMeter(FakeMeter):
        reads = 0

        def finish(self) -> None:
            raise RuntimeError("bug")

        @property
        def speech_sec(self) -> float:
            self.reads += 1
            raise RuntimeError("bug")

        @speech_sec.setter
        def speech_sec(self, value: float) -> None:
            pass

    provider = FakeProvider()
    tracker, sent = tracker_with(provider, interval=0.02)
    broken = BrokenMeter(1.0, 2.0)
    tracker.meters = [broken]  # type: ignore[list-item]  # a FakeMeter for the SpeechMeter
    tracker.start()
    await settle(lambda: broken.reads >= 2)  # two periodic events hit the bug: the loop goes on
    assert await tracker.finish() is None
    assert sent == [] and provider.closed


async def test_cancel_stops_without_a_final_event() -> None:
    provider = FakeProvider()
    tracker, sent = tracker_with(provider, interval=10)
    tracker.start()
    await tracker.cancel()
    assert sent == [] and provider.closed
    assert await tracker.finish() is None


async def test_local_provider_runs_off_the_loop() -> None:
    data = InsightsInput(transcript=TEXT, language="pt", keywords=[])
    result = await LocalProvider(300).analyse(data)
    assert result.summary == local_summary(TEXT, "pt", 300) and result.keywords is None


# ---- the OpenAI-compatible provider ----------------------------------------------------------


def openai_with(handler) -> OpenAIProvider:
    return OpenAIProvider(
        url="http://llm.test/v1/",
        key="sk-secret",
        model="m1",
        timeout_sec=2.0,
        max_chars=100,
        max_keywords=3,
        max_transcript_chars=40,
        transport=httpx.MockTransport(handler),
    )


def reply(content: str, status: int = 200) -> httpx.Response:
    return httpx.Response(status, json={"choices": [{"message": {"content": content}}]})


async def test_openai_request_and_reply() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = {"summary": "Cliente quer pizza.", "keywords": ["pizza", " ", 3, "entrega"]}
        return reply("```json\n" + json.dumps(answer) + "\n```")

    provider = openai_with(handler)
    data = InsightsInput(
        transcript="quero uma pizza grande com entrega rápida por favor",
        language="pt",
        keywords=["pizza"],
    )
    result = await provider.analyse(data)
    await provider.aclose()
    assert result == ProviderResult(summary="Cliente quer pizza.", keywords=["pizza", "entrega"])
    (request,) = seen
    assert request.method == "POST" and str(request.url) == "http://llm.test/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer sk-secret"
    body = json.loads(request.content)
    assert body["model"] == "m1" and body["temperature"] == 0
    system, user = body["messages"]
    assert system["role"] == "system" and "Brazilian Portuguese" in system["content"]
    assert user == {"role": "user", "content": data.transcript[-40:]}  # the tail only


def test_openai_stereo_transcript_names_speakers() -> None:
    provider = openai_with(lambda request: reply("{}"))
    data = InsightsInput(
        transcript="", language="en", keywords=[], turns=[(0, "hi"), (1, "hello")], channels=2
    )
    user = provider.request_body(data)["messages"][1]["content"]
    assert user == "Speaker 1: hi\nSpeaker 2: hello"


def test_openai_prose_reply_is_the_summary() -> None:
    provider = openai_with(lambda request: reply(""))
    assert provider.parse_reply("O cliente quer uma pizza.") == ProviderResult(
        summary="O cliente quer uma pizza."
    )
    assert len(provider.parse_reply("palavra " * 100).summary) <= 100


@pytest.mark.parametrize(
    ("handler", "error"),
    [
        (lambda request: reply("x", status=500), "openai: HTTP 500"),
        (lambda request: httpx.Response(200, text="not json"), "openai: unexpected response"),
        (lambda request: httpx.Response(200, json={"choices": []}), "openai: unexpected response"),
    ],
)
async def test_openai_failures(handler, error: str) -> None:
    provider = openai_with(handler)
    with pytest.raises(ProviderError, match=error):
        await provider.analyse(InsightsInput(transcript="oi", language="pt", keywords=[]))
    await provider.aclose()


async def test_openai_unreachable_and_key_never_in_errors() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused sk-secret", request=request)

    provider = openai_with(refuse)
    with pytest.raises(ProviderError) as caught:
        await provider.analyse(InsightsInput(transcript="oi", language="pt", keywords=[]))
    await provider.aclose()
    assert str(caught.value) == "openai: request failed (ConnectError)"


# ---- which provider a session gets -----------------------------------------------------------


def provider_of(settings: GatewaySettings, **start: object) -> tuple[str, list[str]]:
    config = build_session_config(
        StartMessage.model_validate({"event": "start", "enable_insights": True, **start}),
        settings,
    )
    return config.provider, config.warnings


def test_provider_choice_and_fallback() -> None:
    plain = GatewaySettings()
    assert provider_of(plain) == ("local", [])
    assert provider_of(plain, provider="paneas") == (
        "local",
        ["unknown provider 'paneas': using 'local'"],
    )
    assert provider_of(plain, provider="openai")[0] == "local"  # no URL configured
    with_llm = GatewaySettings(insights_openai_url="http://llm.test/v1", insights_provider="openai")
    assert provider_of(with_llm) == ("openai", [])
    assert provider_of(with_llm, provider="local") == ("local", [])
    assert provider_of(with_llm, provider="paneas") == (
        "openai",
        ["unknown provider 'paneas': using 'openai'"],
    )
    assert isinstance(make_provider("openai", with_llm), OpenAIProvider)
    assert isinstance(make_provider("openai", plain), LocalProvider)


def test_openai_key_is_secret_in_settings() -> None:
    settings = GatewaySettings(insights_openai_key="sk-secret")
    assert "sk-secret" not in repr(settings) and "sk-secret" not in str(settings.model_dump())
