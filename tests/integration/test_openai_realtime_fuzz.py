"""Bad input on the Realtime socket, against a real gateway: each named mistake gets an `error`
event and the session goes on (or, past the server's frame limit, closes with 1009); random
event sequences never crash it. Every frame is validated against the official SDK's models."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import httpx
import psutil
import pytest
import websockets
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.sync.client import ClientConnection, connect

from launcher.processes import ManagedProcess
from tests.metrics_utils import scrape, value
from tests.openai_utils import KEY, MAX_APPEND_BYTES, check_realtime_event

HEADERS = {"Authorization": f"Bearer {KEY}"}


def url(gateway: ManagedProcess, intent: bool = True) -> str:
    base = gateway.url.replace("http", "ws") + "/v1/realtime"
    return base + ("?intent=transcription" if intent else "")


def append(audio: bytes | str) -> str:
    data = audio if isinstance(audio, str) else base64.b64encode(audio).decode()
    return json.dumps({"type": "input_audio_buffer.append", "audio": data})


def clear() -> str:
    return json.dumps({"type": "input_audio_buffer.clear"})


def until(ws: ClientConnection, kind: str) -> list[dict[str, Any]]:
    """Events up to the first of `kind` (each validated)."""
    events = []
    while not events or events[-1]["type"] != kind:
        events.append(check_realtime_event(json.loads(ws.recv(timeout=20))))
    return events


BAD = [
    ("unknown event", json.dumps({"type": "input_audio_buffer.dance"}), "invalid_value"),
    ("not JSON", "{'type': 'session.update'", "invalid_json"),
    ("bad base64", append("not base64!"), "invalid_value"),
    (
        "a format OpenAI does not define",
        json.dumps(
            {
                "type": "session.update",
                "session": {
                    "type": "transcription",
                    "audio": {"input": {"format": {"type": "audio/flac"}}},
                },
            }
        ),
        "invalid_value",
    ),
    (
        "pcm at another rate",
        json.dumps(
            {
                "type": "session.update",
                "session": {"audio": {"input": {"format": {"type": "audio/pcm", "rate": 16000}}}},
            }
        ),
        "invalid_value",
    ),
    ("half a sample", append(b"\x01"), "invalid_value"),
    ("oversize append", append(b"\x00" * (MAX_APPEND_BYTES + 2048)), "audio_too_large"),
    ("a conversation event", json.dumps({"type": "response.create"}), "unsupported_event"),
]


def test_named_mistakes_get_errors_and_the_session_goes_on(openai_gateway) -> None:
    with connect(url(openai_gateway), additional_headers=HEADERS, max_size=2**24) as ws:
        assert until(ws, "session.created")
        for name, frame, code in BAD:
            ws.send(frame)
            error = until(ws, "error")[-1]["error"]
            assert error["code"] == code, (name, error)
            assert error["message"] and error["type"] == "invalid_request_error", name
        ws.send(b"\x00\x01")  # binary frames are not part of the API
        assert until(ws, "error")[-1]["error"]["code"] == "invalid_event"
        # still a working session: the beta update shape, audio in, a clear answered
        beta = {"input_audio_format": "pcm16", "turn_detection": None}
        ws.send(json.dumps({"type": "transcription_session.update", "session": beta}))
        assert until(ws, "transcription_session.updated")[-1]["session"]["turn_detection"] is None
        ws.send(append(b"\x00\x00" * 2400))
        ws.send(clear())
        assert until(ws, "input_audio_buffer.cleared")
    # audio before session.update, where the connection did not say it is a transcription one
    with connect(url(openai_gateway, intent=False), additional_headers=HEADERS) as ws:
        until(ws, "session.created")
        ws.send(append(b"\x00\x00" * 2400))
        assert until(ws, "error")[-1]["error"]["code"] == "session_not_configured"
        ws.send(json.dumps({"type": "session.update", "session": {"type": "transcription"}}))
        assert until(ws, "session.updated")
        ws.send(append(b"\x00\x00" * 2400))
        ws.send(clear())
        assert [e["type"] for e in until(ws, "input_audio_buffer.cleared")] == [
            "input_audio_buffer.cleared"
        ]
    # past what the server reads at all: closed with 1009 (message too big), no crash
    with connect(url(openai_gateway), additional_headers=HEADERS, max_size=2**24) as ws:
        until(ws, "session.created")
        ws.send(append(b"\x00" * MAX_APPEND_BYTES * 2))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            until(ws, "never")
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


TYPES = [
    "session.update", "transcription_session.update", "input_audio_buffer.append",
    "input_audio_buffer.commit", "input_audio_buffer.clear", "response.create", "dance", "",
]  # fmt: skip
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.floats(allow_nan=True),
    st.text(max_size=20),
    st.sampled_from(
        ["transcription", "realtime", "audio/pcm", "audio/pcmu", "pcm16", "server_vad", "pt", "xx"]
    ),
)  # fmt: skip
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.sampled_from(["type", "audio", "input", "format", "rate", "transcription", "language",
                     "turn_detection", "threshold", "silence_duration_ms", "session", "x"]),
    inner, max_size=4), max_leaves=8)  # fmt: skip
audio = st.binary(max_size=3000).map(lambda b: base64.b64encode(b[: len(b) // 2 * 2]).decode())
events = st.fixed_dictionaries(
    {"type": st.sampled_from(TYPES)},
    optional={"session": values, "audio": st.one_of(audio, values), "event_id": scalars},
)
frames = st.lists(
    st.one_of(events.map(lambda e: json.dumps(e, allow_nan=True)), st.text(max_size=100)),
    max_size=8,
)


def test_random_event_sequences_never_crash(openai_gateway) -> None:
    assert openai_gateway.proc is not None
    process = psutil.Process(openai_gateway.proc.pid)
    before = process.memory_info().rss
    count = 0

    @settings(
        max_examples=80,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        derandomize=True,
    )
    @given(sequence=frames)
    def run(sequence: list[str]) -> None:
        nonlocal count
        count += 1
        with connect(url(openai_gateway), additional_headers=HEADERS, max_size=2**24) as ws:
            until(ws, "session.created")
            for frame in sequence:
                ws.send(frame)
            ws.send(clear())  # always answered, whatever came before
            until(ws, "input_audio_buffer.cleared")
        assert openai_gateway.alive

    run()
    assert count >= 80
    assert httpx.get(f"{openai_gateway.url}/health").status_code == 200
    deadline = time.monotonic() + 10
    while value(scrape(openai_gateway.url), "asr_active_sessions") != 0:
        assert time.monotonic() < deadline, "sessions left open"
        time.sleep(0.2)
    growth = (process.memory_info().rss - before) / 2**20
    assert growth < 50, f"gateway grew {growth:.1f} MB over {count} fuzzed sessions"
    assert "Traceback" not in openai_gateway.log_text()
