"""Faults with real processes: workers down and back, the client's connection dropped, the
gateway restarted mid-session, SIGTERM. Nothing received may be lost or doubled."""

from __future__ import annotations

import asyncio
import signal
import time

import httpx
import pytest

from bench.scoring import wer
from client.resilient import ResilientStream
from launcher.processes import free_port, gateway_process, worker_process
from tests.audio_utils import read_wav, to_pcm16, wav_bytes
from tests.metrics_utils import scrape, value
from tests.promises import hold
from tests.words_utils import assert_in_order_once, transcript_words
from tests.ws_utils import run_session, text_of

CLIP = "fleurs-pt-000"  # 17.8 s
START = {"language": "pt", "profile": "balanced", "partials": False}


def ws(proc) -> str:
    return proc.url.replace("http", "ws") + "/ws/transcribe"


def close_to(reference: str, hypothesis: str, uninterrupted: str, fault: str) -> None:
    """As good as the uninterrupted run (promise row `resumed-vs-uninterrupted`): a fault must
    not move where windows are cut nor what context the model hears."""
    measured, before = wer(reference, hypothesis), wer(reference, uninterrupted)
    hold("resumed-vs-uninterrupted", measured, before, reference, fault)


def no_duplicates(events: list[dict]) -> None:
    assert_in_order_once(transcript_words(events))


@pytest.fixture(scope="module")
def uninterrupted(gateway, manifest) -> str:
    audio = to_pcm16(read_wav(manifest[CLIP].path))
    return text_of(asyncio.run(run_session(ws(gateway), audio, START, realtime_ms=150)))


def test_all_workers_down_for_a_while(log_dir, manifest, uninterrupted) -> None:
    """The only worker is killed 4 s into a session and back 5 s later: the session stays
    open, audio waits, and everything is transcribed once the worker is back."""
    worker_port = free_port()
    worker = worker_process(worker_port, log_dir=log_dir, name="worker-outage").start()
    worker.wait_ready(timeout=60)
    gateway = gateway_process(free_port(), worker.url, log_dir=log_dir, name="gateway-outage")
    gateway.start().wait_ready(timeout=60)
    audio = to_pcm16(read_wav(manifest[CLIP].path))
    restarted = worker_process(worker_port, log_dir=log_dir, name="worker-outage-2")

    async def chaos() -> None:
        await asyncio.sleep(4.0)
        worker.kill()
        await asyncio.sleep(5.0)
        restarted.start()

    async def go() -> list[dict]:
        task = asyncio.create_task(chaos())
        events = await run_session(ws(gateway), audio, START, realtime_ms=150)
        await task
        return events

    try:
        events = asyncio.run(go())
    finally:
        gateway.stop()
        restarted.stop()
        worker.stop()
    assert [e for e in events if e["event"] == "error"] == []
    close_to(manifest[CLIP].reference_text, text_of(events), uninterrupted, "all workers down")
    assert events[-1]["summary"]["transcribed_sec"] == pytest.approx(
        manifest[CLIP].duration_s, abs=0.01
    )
    no_duplicates(events)


def test_client_connection_drops_and_resumes(worker, log_dir, manifest, uninterrupted) -> None:
    """The TCP connection is cut (no close frame) twice: the client resumes the same session,
    re-sends what the gateway did not get, and no transcript comes twice."""
    gateway = gateway_process(free_port(), worker.url, log_dir=log_dir, name="gateway-resume")
    gateway.start().wait_ready(timeout=60)
    audio = to_pcm16(read_wav(manifest[CLIP].path))

    async def go() -> ResilientStream:
        stream = ResilientStream(ws(gateway), START)
        player = asyncio.create_task(stream.play(audio, realtime=True, frame_ms=300))
        runner = asyncio.create_task(stream.run())
        for at in (5.0, 11.0):
            await asyncio.sleep(at - (5.0 if at > 5.0 else 0.0))
            stream.drop_connection()  # as if the network went away
        await player
        await runner
        return stream

    try:
        stream = asyncio.run(go())
    finally:
        gateway.stop()
    assert stream.reconnects >= 2 and len(stream.sessions) == 1  # resumed, not restarted
    close_to(
        manifest[CLIP].reference_text,
        text_of(stream.events),
        uninterrupted,
        "client connection dropped",
    )
    no_duplicates(stream.events)


def test_gateway_restart_mid_session(worker, log_dir, manifest, uninterrupted) -> None:
    """The gateway is killed 6 s in and restarted on the same port: the client learns the
    session is gone (resume_unknown), starts a new one on the same timeline from its committed
    offset with the audio before it as context, and the text matches an uninterrupted run."""
    port = free_port()
    first = gateway_process(port, worker.url, log_dir=log_dir, name="gateway-restart-1")
    first.start().wait_ready(timeout=60)
    second = gateway_process(port, worker.url, log_dir=log_dir, name="gateway-restart-2")
    audio = to_pcm16(read_wav(manifest[CLIP].path))

    async def go() -> ResilientStream:
        stream = ResilientStream(ws(first), START)
        player = asyncio.create_task(stream.play(audio, realtime=True, frame_ms=300))
        runner = asyncio.create_task(stream.run())
        await asyncio.sleep(6.0)
        first.kill()
        second.start()
        await asyncio.to_thread(second.wait_ready, 60)
        await player
        await runner
        return stream

    try:
        stream = asyncio.run(go())
    finally:
        first.stop()
        second.stop()
    assert len(stream.sessions) == 2
    # started, tried to resume on the new gateway (which answered resume_unknown), started anew
    assert ["resume" in start for start in stream.starts_sent] == [False, True, False]
    # the new session heard the committed audio before its timeline as context
    fresh = stream.starts_sent[-1]
    assert "resume" not in fresh and fresh["timeline_offset"] > 0, fresh
    assert 0 < fresh["context_samples"] <= 5 * 16000 and fresh["context_word_starts"], fresh
    close_to(
        manifest[CLIP].reference_text, text_of(stream.events), uninterrupted, "gateway restarted"
    )
    no_duplicates(stream.events)
    last = [e for e in stream.events if e["event"] == "transcript"][-1]
    assert last["end"] > manifest[CLIP].duration_s - 3  # the second session kept the timeline


@pytest.mark.parametrize("mode", ["batch", "stream"])
def test_new_session_hears_its_context_and_transcribes_none_of_it(gateway, manifest, mode) -> None:
    """What the clients send after `resume_unknown`: the timeline from C on, preceded by the
    audio from a word's start up to 5 s before C. Nothing before C comes back, nothing is lost,
    and the text from C on is the whole session's."""
    clip = manifest[CLIP]
    audio = to_pcm16(read_wav(clip.path))
    start = {**START, "mode": mode}
    whole = asyncio.run(run_session(ws(gateway), audio, start))
    words = [w for e in whole if e["event"] == "transcript" for w in e["words"]]
    cut = next(round(w["start"] * 16000) for w in words if w["start"] >= 6.0)
    starts = [round(w["start"] * 16000) for w in words if cut - 5 * 16000 <= w["start"] * 16000]
    starts = [s for s in starts if s < cut]
    begin = starts[0] - 1600
    context = {
        "timeline_offset": cut,
        "context_samples": cut - begin,
        "context_word_starts": starts,
    }
    events = asyncio.run(run_session(ws(gateway), audio[begin * 2 :], {**start, **context}))
    assert [e for e in events if e["event"] == "error"] == []
    new = [w for e in events if e["event"] == "transcript" for w in e["words"]]
    assert new and min(w["start"] for w in new) >= cut / 16000 - 0.1, new[:3]
    summary = events[-1]["summary"]
    assert summary["audio_sec"] == pytest.approx(clip.duration_s, abs=0.01)
    assert summary["transcribed_sec"] == pytest.approx(clip.duration_s, abs=0.01)
    after = " ".join(w["word"] for w in words if w["start"] >= cut / 16000 - 0.1)
    measured = wer(after, " ".join(w["word"] for w in new))
    hold("resumed-vs-uninterrupted", measured, 0.0, after, f"new session with context, {mode}")


def test_sigterm_finishes_sessions_with_1001(worker, log_dir, manifest) -> None:
    import json

    import websockets

    gateway = gateway_process(free_port(), worker.url, log_dir=log_dir, name="gateway-sigterm")
    gateway.start().wait_ready(timeout=60)
    audio = to_pcm16(read_wav(manifest["ufpalign-coxinha"].path))

    async def go() -> tuple[list[dict], int]:
        async with websockets.connect(ws(gateway), ping_interval=None) as conn:
            await conn.send(json.dumps({"event": "start", "language": "pt"}))
            await conn.send(audio)
            events = [json.loads(await conn.recv())]
            while not (events[-1]["event"] == "ack" and events[-1]["received_offset"] > 0):
                events.append(json.loads(await conn.recv()))  # the gateway has the audio
            assert gateway.proc is not None
            gateway.proc.send_signal(signal.SIGTERM)
            with pytest.raises(websockets.ConnectionClosed) as closed:
                while True:
                    events.append(json.loads(await conn.recv()))
            return events, closed.value.rcvd.code

    started = time.monotonic()
    try:
        events, code = asyncio.run(go())
    finally:
        gateway.stop()
    assert code == 1001
    assert events[-1]["event"] == "end"
    assert "coxinha" in text_of(events).lower()  # the in-flight audio was transcribed
    assert time.monotonic() - started < 25


def test_worker_sigterm_finishes_the_request_in_flight(log_dir, manifest, whole_file_text) -> None:
    """SIGTERM while a worker transcribes: it stops accepting, answers the request it has, and
    exits cleanly."""
    worker = worker_process(free_port(), log_dir=log_dir, name="worker-sigterm").start()
    worker.wait_ready(timeout=60)
    body = wav_bytes(read_wav(manifest[CLIP].path))  # 17.8 s: a few seconds of work here

    def transcribe() -> httpx.Response:
        files = {"file": ("a.wav", body)}
        return httpx.post(
            f"{worker.url}/transcribe", files=files, data={"language": "pt"}, timeout=120
        )

    def in_flight() -> float:
        return value(scrape(worker.url), "asr_worker_in_flight")

    async def go() -> httpx.Response:
        request = asyncio.create_task(asyncio.to_thread(transcribe))
        deadline = time.monotonic() + 30
        while await asyncio.to_thread(in_flight) < 1:  # until the request is in
            assert time.monotonic() < deadline, "the request never reached the worker"
        assert worker.proc is not None
        worker.proc.send_signal(signal.SIGTERM)
        return await request

    try:
        response = asyncio.run(go())
        assert worker.proc is not None
        exit_code = worker.proc.wait(timeout=40)
    finally:
        worker.stop()
    assert response.status_code == 200, response.text
    # the whole clip, not a cut-off part: the same text as any other worker gives for it
    assert response.json()["text"] == whole_file_text(CLIP)
    assert exit_code in (0, -signal.SIGTERM)  # uvicorn re-raises the signal after its shutdown
