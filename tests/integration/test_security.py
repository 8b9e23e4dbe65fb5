"""Auth, origins and limits, against real gateway processes (and the session's real worker)."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator

import httpx
import pytest
import websockets

from api.auth import digest
from launcher.processes import ManagedProcess, free_port, gateway_process
from tests.audio_utils import read_wav, silence, to_pcm16, wav_bytes
from tests.ws_utils import check_event

KEY, OTHER_KEY = "s3cret-key-one", "s3cret-key-two"


def start_gateway(worker, log_dir, name: str, **env: str) -> ManagedProcess:
    proc = gateway_process(free_port(), worker.url, env=env, log_dir=log_dir, name=name).start()
    return proc.wait_ready(timeout=60)


def ws_url(gateway: ManagedProcess, query: str = "") -> str:
    return gateway.url.replace("http", "ws") + "/ws/transcribe" + query


@pytest.fixture(scope="module")
def secured(worker, log_dir) -> Iterator[ManagedProcess]:
    proc = start_gateway(
        worker,
        log_dir,
        "gateway-secured",
        ASR_AUTH_REQUIRED="true",
        ASR_API_KEYS=f"alice:{digest(KEY)},bob:{digest(OTHER_KEY)}",
        ASR_ALLOWED_ORIGINS="https://good.example",
        ASR_MAX_SESSIONS="3",
        ASR_MAX_SESSIONS_PER_KEY="1",
        ASR_FILE_MAX_BYTES="400000",
        ASR_FILE_MAX_SEC="5",
    )
    yield proc
    proc.stop()


async def _open(url: str, **kwargs) -> tuple[websockets.ClientConnection, dict]:
    ws = await websockets.connect(url, **kwargs)
    await ws.send(json.dumps({"event": "start", "language": "pt"}))
    return ws, check_event(await ws.recv())


def test_websocket_needs_a_key(secured) -> None:
    async def refused(**kwargs) -> None:
        async with websockets.connect(ws_url(secured), **kwargs) as ws:
            event = check_event(await ws.recv())  # told before anything is sent
            assert event["code"] == "unauthorized" and event["fatal"]
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd.code == 1008

    async def go() -> None:
        await refused()
        await refused(subprotocols=["asr.v1", "bearer.wrong"])
        # the key as a subprotocol: the server picks "asr.v1", never the key
        ws, event = await _open(ws_url(secured), subprotocols=["asr.v1", f"bearer.{KEY}"])
        assert event["event"] == "ready" and ws.subprotocol == "asr.v1"
        await ws.send(json.dumps({"event": "stop"}))
        assert [check_event(m)["event"] async for m in ws][-1] == "end"
        # or as a query parameter (ends up in proxy logs: documented as second choice)
        ws, event = await _open(ws_url(secured, f"?api_key={OTHER_KEY}"))
        assert event["event"] == "ready"
        await ws.send(json.dumps({"event": "stop"}))
        assert [check_event(m)["event"] async for m in ws][-1] == "end"

    asyncio.run(go())
    assert KEY not in secured.log_text() and OTHER_KEY not in secured.log_text()


def test_origin_allow_list(secured) -> None:
    async def go() -> None:
        async with websockets.connect(
            ws_url(secured), subprotocols=["asr.v1", f"bearer.{KEY}"], origin="https://evil.example"
        ) as evil:
            event = check_event(await evil.recv())
            assert event["code"] == "forbidden_origin" and event["fatal"]
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await evil.recv()
            assert closed.value.rcvd.code == 1008
        ws, event = await _open(
            ws_url(secured), subprotocols=["asr.v1", f"bearer.{KEY}"], origin="https://good.example"
        )
        assert event["event"] == "ready"
        await ws.close()

    asyncio.run(go())


def test_http_needs_a_key_and_limits_uploads(secured, manifest) -> None:
    url = f"{secured.url}/v1/audio/transcriptions"
    audio = {"file": ("a.wav", manifest["ufpalign-m-001"].path.read_bytes())}
    assert httpx.post(url, files=audio).status_code == 401
    assert httpx.post(url, files=audio, headers={"Authorization": "Bearer nope"}).status_code == 401
    ok = httpx.post(url, files=audio, headers={"Authorization": f"Bearer {KEY}"}, timeout=60)
    assert ok.status_code == 200, ok.text
    headers = {"Authorization": f"Bearer {KEY}"}
    big = httpx.post(url, files={"file": ("b.wav", wav_bytes(silence(15)))}, headers=headers)
    assert big.status_code == 413  # 480 kB > 400 kB
    long = httpx.post(url, files={"file": ("c.wav", wav_bytes(silence(6)))}, headers=headers)
    assert long.status_code == 413 and "limit" in long.json()["error"]["message"]  # 6 s > 5 s


def test_session_limits_per_key_and_global(secured) -> None:
    async def go() -> None:
        first, ready = await _open(ws_url(secured), subprotocols=["asr.v1", f"bearer.{KEY}"])
        assert ready["event"] == "ready"
        second, busy = await _open(ws_url(secured), subprotocols=["asr.v1", f"bearer.{KEY}"])
        assert busy["code"] == "busy" and busy["retry_after_sec"] > 0
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await second.recv()
        assert closed.value.rcvd.code == 1013
        # another key still gets in
        third, ready = await _open(ws_url(secured), subprotocols=["asr.v1", f"bearer.{OTHER_KEY}"])
        assert ready["event"] == "ready"
        for ws in (first, third):
            await ws.send(json.dumps({"event": "stop"}))
            assert [check_event(m)["event"] async for m in ws][-1] == "end"

    asyncio.run(go())


def test_finished_transcript_is_kept_for_its_key(secured, manifest) -> None:
    async def go() -> str:
        ws, ready = await _open(ws_url(secured), subprotocols=["asr.v1", f"bearer.{KEY}"])
        await ws.send(to_pcm16(read_wav(manifest["ufpalign-coxinha"].path)))
        await ws.send(json.dumps({"event": "stop"}))
        async for _ in ws:
            pass
        return ready["session_id"]

    session_id = asyncio.run(go())
    url = f"{secured.url}/v1/sessions/{session_id}/transcript"
    body = httpx.get(url, headers={"Authorization": f"Bearer {KEY}"}).json()
    assert "coxinha" in body["text"].lower()
    assert httpx.get(url, headers={"Authorization": f"Bearer {OTHER_KEY}"}).status_code == 404
    assert httpx.get(url).status_code == 401


def test_idle_and_duration_limits(worker, log_dir, manifest) -> None:
    proc = start_gateway(
        worker, log_dir, "gateway-timeouts", ASR_IDLE_TIMEOUT_SEC="2", ASR_MAX_SESSION_SEC="4"
    )

    async def session(send_every: float | None) -> list[dict]:
        ws, ready = await _open(ws_url(proc))
        events = [ready]

        async def feed() -> None:
            while send_every:
                await ws.send(b"\x00\x00" * 1600)
                await asyncio.sleep(send_every)

        feeder = asyncio.create_task(feed())
        try:
            async for raw in ws:
                events.append(check_event(raw))
        except websockets.ConnectionClosed:
            pass
        feeder.cancel()
        return events

    try:
        idle = asyncio.run(session(None))
        assert [e.get("code") for e in idle if e["event"] == "error"] == ["idle_timeout"]
        assert idle[-1]["event"] == "end"
        busy = asyncio.run(session(0.1))
        assert [e.get("code") for e in busy if e["event"] == "error"] == ["session_timeout"]
        assert busy[-1]["event"] == "end"
    finally:
        proc.stop()


def test_backpressure_bounds_buffered_audio(worker, log_dir, manifest) -> None:
    """A client sending 85 s of audio at once: the gateway stops reading while more than
    ASR_MAX_BUFFERED_SEC waits, so received - committed stays bounded in every ack."""
    proc = start_gateway(worker, log_dir, "gateway-backpressure", ASR_MAX_BUFFERED_SEC="6")
    audio = to_pcm16(read_wav(manifest["pt-longform-dev"].path))
    try:
        from tests.ws_utils import run_session

        events = asyncio.run(
            run_session(ws_url(proc), audio, {"language": "pt", "partials": False})
        )
    finally:
        proc.stop()
    gaps = [e["received_offset"] - e["committed_offset"] for e in events if e["event"] == "ack"]
    # the limit is raised to a full window (10 s) + 2 s so a session can always progress
    assert max(gaps) <= (12 + 1) * 16000, max(gaps) / 16000
    assert events[-1]["summary"]["audio_sec"] == pytest.approx(85.112, abs=0.01)


def test_client_that_stops_reading_is_closed_and_can_resume(worker, log_dir) -> None:
    """A client that sends but never reads: once ASR_MAX_OUTBOX_EVENTS events wait, the
    gateway stops adding them, says `slow_consumer` and closes with 1008 as soon as the client
    reads again; the session is parked, so the client can resume it."""
    proc = start_gateway(
        worker,
        log_dir,
        "gateway-slow-reader",
        ASR_MAX_OUTBOX_EVENTS="10",
        ASR_ACK_INTERVAL_SEC="0.001",  # an ack for every 16 samples: many small events
    )

    async def go() -> tuple[list[dict], int | None, dict]:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: small
        sock.connect(("127.0.0.1", int(proc.url.rsplit(":", 1)[1])))
        # max_queue=1: the library stops reading once one message waits, like a stuck client
        ws = await websockets.connect(ws_url(proc), sock=sock, max_queue=1, ping_interval=None)
        await ws.send(json.dumps({"event": "start", "language": "pt", "partials": False}))
        frame = bytes(32)  # 16 samples of silence, each answered by an ack
        for _ in range(20_000):  # until the gateway stops reading (or socket buffers take all)
            try:
                await asyncio.wait_for(ws.send(frame), timeout=1.0)
            except (TimeoutError, websockets.ConnectionClosed):
                break
        events: list[dict] = []
        with pytest.raises(websockets.ConnectionClosed):
            while True:
                events.append(check_event(await asyncio.wait_for(ws.recv(), timeout=10)))
        session_id = events[0]["session_id"]
        async with websockets.connect(ws_url(proc), ping_interval=None) as again:
            resume = {"session_id": session_id, "offset": 0, "last_segment_id": 0}
            await again.send(json.dumps({"event": "start", "language": "pt", "resume": resume}))
            resumed = check_event(await again.recv())
            await again.send(json.dumps({"event": "stop"}))
        return events, ws.close_code, resumed

    try:
        events, code, resumed = asyncio.run(go())
        metrics = httpx.get(f"{proc.url}/metrics").text
    finally:
        proc.stop()
    assert events[0]["event"] == "ready"
    assert len(events) < 5000  # bounded: what was already in socket buffers, not everything
    assert events[-1]["event"] == "error" and events[-1]["code"] == "slow_consumer"
    assert code == 1008
    assert resumed["event"] == "ready" and resumed["resumed"] is True
    assert 'asr_errors_total{kind="slow_consumer"} 1.0' in metrics


def test_keys_never_reach_either_services_logs(worker, log_dir, manifest) -> None:
    """A key in a query string, an Authorization header and a `bearer.<key>` subprotocol, to
    the gateway (WebSocket and HTTP) and to a worker, at debug level: neither log holds it.
    uvicorn logs a WebSocket's path with its query (the stdlib logger's path: redacted)."""
    secret = "sk-never-log-me-0123"
    gateway = start_gateway(
        worker,
        log_dir,
        "gateway-keys",
        ASR_AUTH_REQUIRED="true",
        ASR_API_KEYS=digest(secret),
        ASR_LOG_LEVEL="DEBUG",
    )
    try:

        async def sessions() -> None:
            for kwargs, query in (
                ({"subprotocols": ["asr.v1", f"bearer.{secret}"]}, ""),
                ({"additional_headers": {"Authorization": f"Bearer {secret}"}}, ""),
                ({}, f"?api_key={secret}"),
            ):
                ws, event = await _open(ws_url(gateway, query), **kwargs)
                assert event["event"] == "ready", event
                await ws.send(json.dumps({"event": "stop"}))
                assert [check_event(m)["event"] async for m in ws][-1] == "end"

        asyncio.run(sessions())
        audio = {"file": ("a.wav", manifest["ufpalign-m-001"].path.read_bytes())}
        url = f"{gateway.url}/v1/audio/transcriptions"
        assert (
            httpx.post(
                url, files=audio, headers={"Authorization": f"Bearer {secret}"}, timeout=60
            ).status_code
            == 200
        )
        assert httpx.post(f"{url}?api_key={secret}", files=audio, timeout=60).status_code == 200
        for headers, query in (
            ({"Authorization": f"Bearer {secret}"}, ""),
            ({}, f"?api_key={secret}"),
        ):
            response = httpx.post(
                f"{worker.url}/transcribe{query}", files=audio, headers=headers, timeout=60
            )
            assert response.status_code == 200
    finally:
        gateway.stop()
    gateway_log, worker_log = gateway.log_text(), worker.log_text()
    assert secret not in gateway_log and secret not in worker_log
    assert "api_key=[redacted]" in gateway_log  # the query string was logged, redacted
