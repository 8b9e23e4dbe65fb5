"""Live insights through the real gateway and worker: the local provider on fleurs-pt-001, and
the `openai` provider against a small OpenAI-compatible server started here (answers, sleeps
past the timeout, or fails with HTTP 500).

The gateway here is our own process: the interval (1 s, so a short clip gets several periodic
events), the provider URL and the timeout (1 s) are per-process settings."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from api.insights.local import local_summary
from api.insights.speech import PAUSE_MS
from api.insights.text import stop_words, words
from bench.scoring import Clip, normalize
from launcher.processes import ManagedProcess, free_port, gateway_process
from tests.audio_utils import read_wav, to_pcm16
from tests.ws_utils import run_session, text_of, transcripts

CLIP = "fleurs-pt-001"
SHORT = "fleurs-pt-002"
PACE_MS = 150  # 300 ms frames every 150 ms: twice real time
TIMEOUT_SEC = 1.0
LLM_KEY = "sk-insights-test"
LLM_SUMMARY = "Resumo do modelo: corrida de Fórmula 1."
LLM_KEYWORDS = ["piloto", "fórmula 1"]  # none of them in the transcript


@dataclass
class FakeLLM:
    """An OpenAI-compatible chat completions endpoint: `mode` is ok, slow or fail."""

    port: int = 0
    mode: str = "ok"
    requests: list[dict[str, Any]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


def make_handler(llm: FakeLLM) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            llm.requests.append(
                {"path": self.path, "auth": self.headers.get("Authorization"), "body": body}
            )
            if llm.mode == "slow":
                time.sleep(3 * TIMEOUT_SEC)
            if llm.mode == "fail":
                self._send(500, {"error": {"message": "boom"}})
                return
            content = json.dumps({"summary": LLM_SUMMARY, "keywords": LLM_KEYWORDS})
            self._send(200, {"choices": [{"message": {"role": "assistant", "content": content}}]})

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except OSError:
                pass  # the gateway gave up waiting (the timeout case)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeLLM]:
    state = FakeLLM()
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(state))
    server.daemon_threads = True
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def insights_gateway(
    worker: ManagedProcess, llm: FakeLLM, log_dir: Path
) -> Iterator[ManagedProcess]:
    env = {
        "ASR_INSIGHTS_INTERVAL_SEC": "1",
        "ASR_INSIGHTS_TIMEOUT_SEC": str(TIMEOUT_SEC),
        "ASR_INSIGHTS_OPENAI_URL": llm.url,
        "ASR_INSIGHTS_OPENAI_KEY": LLM_KEY,
        "ASR_INSIGHTS_OPENAI_MODEL": "test-model",
    }
    proc = gateway_process(free_port(), worker.url, env=env, log_dir=log_dir, name="gw-insights")
    proc.start()
    try:
        yield proc.wait_ready(timeout=60)
    finally:
        proc.stop()


def ws_url(proc: ManagedProcess) -> str:
    return proc.url.replace("http://", "ws://") + "/ws/transcribe"


def insights(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e["event"] == "insights"]


def final_insights(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The last insights event: final, just before `end`."""
    assert events[-1]["event"] == "end" and events[-2]["event"] == "insights"
    final = events[-2]
    assert final["final"] and not any(e["final"] for e in insights(events)[:-1])
    return final


def offline_vad(clip: Clip) -> tuple[float, float]:
    """(speech seconds, silence ratio) of the clip by faster-whisper's VAD, offline."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    audio = read_wav(clip.path)
    stamps = get_speech_timestamps(
        audio, VadOptions(min_silence_duration_ms=PAUSE_MS, speech_pad_ms=0)
    )
    speech = sum(s["end"] - s["start"] for s in stamps) / 16000
    return speech, 1 - speech / (audio.size / 16000)


async def test_local_insights_on_a_real_session(
    insights_gateway: ManagedProcess, manifest: dict[str, Clip]
) -> None:
    clip = manifest[CLIP]
    pcm = to_pcm16(read_wav(clip.path))
    start = {"enable_insights": True, "language": "pt"}
    runs = [
        await run_session(ws_url(insights_gateway), pcm, start, realtime_ms=PACE_MS)
        for _ in range(2)
    ]
    speech, silence = offline_vad(clip)
    finals = []
    for events in runs:
        assert events[0]["config"]["provider"] == "local" and not events[0]["warnings"]
        final = final_insights(events)
        finals.append(final)
        periodic = insights(events)[:-1]
        assert len(periodic) >= 4, "a ~7 s session with a 1 s interval"
        assert all(e["provider"] == "local" and e["error"] is None for e in periodic)
        # figures only grow while the session runs
        spoken = [e["speaking_sec"] for e in insights(events)]
        assert spoken == sorted(spoken)
        # mid-session the pace counts only the speech the transcript has reached
        paces = [e["words_per_minute"] for e in periodic if e["word_count"]]
        assert paces and all(80 <= pace <= 250 for pace in paces), paces

        assert "pirâmide" in final["keywords"]
        assert not set(final["keywords"]) & stop_words("pt")
        assert final["speaking_sec"] == pytest.approx(speech, abs=0.2)
        assert final["audio_sec"] == pytest.approx(clip.duration_s, abs=0.05)
        assert abs(final["silence_ratio"] - silence) <= 0.05
        # the pace: the session's words over the speech an offline VAD hears in the clip (the
        # word count is the transcript's: "a.C." comes back as "antes de Cristo")
        offline_wpm = final["word_count"] / (speech / 60)
        assert final["words_per_minute"] == pytest.approx(offline_wpm, rel=0.03)
        assert final["word_count"] == sum(len(e["words"]) for e in transcripts(events))

        text = text_of(events)
        assert final["summary"] == local_summary(text, "pt", 300)  # a function of the text
        assert 0 < len(final["summary"]) <= 300
        assert "pirâmide" in words(final["summary"])
    assert finals[0]["summary"] == finals[1]["summary"]
    assert finals[0]["keywords"] == finals[1]["keywords"]


async def test_openai_provider_request_and_answer(
    insights_gateway: ManagedProcess, llm: FakeLLM, manifest: dict[str, Clip]
) -> None:
    llm.mode, llm.requests = "ok", []
    pcm = to_pcm16(read_wav(manifest[SHORT].path))
    events = await run_session(
        ws_url(insights_gateway),
        pcm,
        {"enable_insights": True, "language": "pt", "provider": "openai"},
    )
    assert events[0]["config"]["provider"] == "openai" and not events[0]["warnings"]
    final = final_insights(events)
    assert final["provider"] == "openai" and final["error"] is None
    assert final["summary"] == LLM_SUMMARY and final["keywords"] == LLM_KEYWORDS
    assert final["speaking_sec"] > 3 and 0 < final["silence_ratio"] < 1  # stats stay local
    assert llm.requests, "the provider was asked"
    request = llm.requests[-1]
    assert request["path"] == "/v1/chat/completions"
    assert request["auth"] == f"Bearer {LLM_KEY}"
    body = request["body"]
    assert body["model"] == "test-model"
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert normalize(body["messages"][1]["content"]) == normalize(text_of(events))


async def test_openai_timeout_never_holds_transcription(
    insights_gateway: ManagedProcess, llm: FakeLLM, manifest: dict[str, Clip]
) -> None:
    """A provider that answers after its timeout: every insights event says so, and the
    transcripts are the ones the same session gets without insights, on time."""
    llm.mode, llm.requests = "slow", []
    clip = manifest[SHORT]
    pcm = to_pcm16(read_wav(clip.path))
    began = time.monotonic()
    events = await run_session(
        ws_url(insights_gateway),
        pcm,
        {"enable_insights": True, "language": "pt", "provider": "openai"},
        realtime_ms=PACE_MS,
    )
    wall = time.monotonic() - began
    errors = [e for e in insights(events) if e["error"]]
    assert errors and all(e["error"] == "openai: timed out after 1 s" for e in errors)
    final = final_insights(events)
    assert final["error"] == "openai: timed out after 1 s"
    assert final["speaking_sec"] > 3 and final["words_per_minute"] > 0 and final["keywords"]
    # the transcript is whole and on time: the provider's 3 s answers were never awaited by it
    plain = await run_session(
        ws_url(insights_gateway), pcm, {"language": "pt"}, realtime_ms=PACE_MS
    )
    assert not any(t["behind"] for t in transcripts(events) + transcripts(plain))
    assert text_of(events) and text_of(events) == text_of(plain)
    assert max(e["timing"]["batch_ms"] for e in transcripts(events)) < 3000
    assert wall < clip.duration_s * PACE_MS / 300 + 2 * TIMEOUT_SEC + 3


async def test_openai_http_500_is_an_error_event(
    insights_gateway: ManagedProcess, llm: FakeLLM, manifest: dict[str, Clip]
) -> None:
    llm.mode, llm.requests = "fail", []
    pcm = to_pcm16(read_wav(manifest[SHORT].path))
    events = await run_session(
        ws_url(insights_gateway),
        pcm,
        {"enable_insights": True, "language": "pt", "provider": "openai"},
    )
    final = final_insights(events)
    assert final["error"] == "openai: HTTP 500" and final["summary"] == ""
    # the local keywords stand in for the provider's: words of this session's transcript
    spoken = set(normalize(text_of(events)).split())
    others = [e for e in events if e["event"] not in ("ack", "partial", "insights")]
    assert final["speaking_sec"] > 3 and final["keywords"], (final, others)  # what went wrong
    assert all(set(normalize(k).split()) <= spoken for k in final["keywords"]), final["keywords"]
    assert transcripts(events) and llm.requests


async def test_unknown_provider_falls_back_to_local(
    insights_gateway: ManagedProcess, manifest: dict[str, Clip]
) -> None:
    pcm = to_pcm16(read_wav(manifest[SHORT].path)[: 16000 * 2])
    start = {"provider": "paneas", "language": "pt"}
    events = await run_session(ws_url(insights_gateway), pcm, {"enable_insights": True, **start})
    assert "unknown provider 'paneas': using 'local'" in events[0]["warnings"]
    assert final_insights(events)["provider"] == "local"
    without = await run_session(ws_url(insights_gateway), pcm, start)
    assert not insights(without), "insights only when enabled"
