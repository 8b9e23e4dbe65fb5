"""Property-based fuzzing of the WebSocket protocol and of uploads against a real gateway."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import psutil
import pytest
import websockets
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.sync.client import connect

from launcher.processes import ManagedProcess, free_port, gateway_process
from tests.metrics_utils import scrape, value
from tests.ws_utils import check_event

FIELDS = [
    "batch_window_sec", "max_batch_window_sec", "profile", "language", "beam_size", "best_of",
    "sample_rate", "encoding", "channels", "partials", "mode", "resume", "timeline_offset",
    "hotwords", "prompt", "enable_insights", "provider", "min_chunk_sec", "context_samples",
    "context_word_starts",
]  # fmt: skip
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["pt", "en", "balanced", "stream", "mulaw", "pcm_f32le", "xx", ""]),
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.text(max_size=8), inner, max_size=3), max_leaves=6)  # fmt: skip
messages = st.fixed_dictionaries(
    {"event": st.sampled_from(["start", "stop", "keepalive", "dance", ""])},
    optional={name: values for name in FIELDS},
)
# a new session with context (valid or not): random values above rarely line up
offsets = st.integers(0, 400_000)


def context_start(values: tuple[int, int, list[int]]) -> str:
    low, high = sorted(values[:2])
    message = {"timeline_offset": high, "context_samples": low, "context_word_starts": values[2]}
    return json.dumps({"event": "start", **message})


contexts = st.tuples(offsets, offsets, st.lists(offsets, max_size=5)).map(context_start)
text_frames = st.one_of(
    messages.map(lambda m: json.dumps(m, allow_nan=True)),
    contexts,
    st.text(max_size=300),
    st.just('{"event": "start", "batch_window_sec": NaN}'),
)
frames = st.lists(st.one_of(text_frames, st.binary(max_size=5000)), max_size=8)


@pytest.fixture(scope="module")
def target(worker, log_dir) -> Iterator[ManagedProcess]:
    env = {"ASR_RESUME_GRACE_SEC": "0", "ASR_IDLE_TIMEOUT_SEC": "5"}
    proc = gateway_process(free_port(), worker.url, env=env, log_dir=log_dir, name="gateway-fuzz")
    proc.start().wait_ready(timeout=60)
    yield proc
    proc.stop()


def _exchange(url: str, sequence: list[str | bytes]) -> None:
    with connect(url, open_timeout=5, max_size=2**24) as ws:
        try:
            for frame in sequence:
                ws.send(frame)
            ws.send(json.dumps({"event": "stop"}))
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                event = check_event(ws.recv(timeout=20))  # every frame is valid protocol
                if event["event"] == "end" or event.get("code") == "not_started":
                    break
                if event["event"] == "error" and event["fatal"]:
                    break
        except websockets.ConnectionClosed:
            pass  # the server may close (frame too large, policy): never a crash


def test_websocket_fuzz_never_crashes(target: ManagedProcess) -> None:
    url = target.url.replace("http", "ws") + "/ws/transcribe"
    assert target.proc is not None
    process = psutil.Process(target.proc.pid)
    # warm up what a first session loads once (the VAD model, resamplers, the worker client)
    for start in ({"sample_rate": 48000, "channels": 2}, {"encoding": "mulaw", "mode": "stream"}):
        _exchange(url, [json.dumps({"event": "start", **start}), b"\x01\x02" * 24000])
    before = process.memory_info().rss
    count = 0

    @settings(
        max_examples=300,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        derandomize=True,
    )
    @given(sequence=frames)
    def run(sequence: list[str | bytes]) -> None:
        nonlocal count
        count += 1
        _exchange(url, sequence)
        assert target.alive

    run()
    assert count >= 300
    assert httpx.get(f"{target.url}/health").status_code == 200
    deadline = time.monotonic() + 10
    while value(scrape(target.url), "asr_active_sessions") != 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert value(scrape(target.url), "asr_active_sessions") == 0
    growth = (process.memory_info().rss - before) / 2**20
    assert growth < 50, f"gateway grew {growth:.1f} MB over {count} fuzzed sessions"
    assert "Traceback" not in target.log_text()


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    derandomize=True,
)
@given(
    body=st.binary(max_size=20000),
    form=st.dictionaries(
        st.sampled_from(
            ["language", "response_format", "temperature", "beam_size", "prompt", "model"]
        ),
        st.text(max_size=12),
        max_size=4,
    ),
)
def test_upload_fuzz_gets_clean_errors(target: ManagedProcess, body: bytes, form: dict) -> None:
    response = httpx.post(
        f"{target.url}/v1/audio/transcriptions",
        files={"file": ("x.bin", body)},
        data=form,
        timeout=60,
    )
    assert response.status_code in {200, 400, 413, 415, 422}, response.text
    if response.status_code != 200:  # OpenAI's error shape
        assert set(response.json()["error"]) == {"message", "type", "param", "code"}
