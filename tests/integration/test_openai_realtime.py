"""The Realtime transcription endpoint through the official SDK's async Realtime client, against
a real gateway and worker; every server frame is validated against the SDK's models."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from typing import Any

import httpx
import numpy as np
import pytest
import soxr
import websockets
from openai import AsyncOpenAI
from websockets.sync.client import connect

from api.audio_input import MULAW
from bench.scoring import wer
from launcher.processes import ManagedProcess, free_port, gateway_process
from tests.audio_utils import mulaw_encode, read_wav, to_pcm16, wav_bytes
from tests.openai_utils import GOOD_ORIGIN, KEY, check_realtime_event, openai_gateway_env
from tests.promises import hold
from tests.ws_utils import run_session, text_of

CLIP = "fleurs-pt-000"  # 17.8 s, pauses between phrases: several turns
APPEND_MS = 300
PCM_RATE = 24_000
TRAILING_SILENCE_SEC = 1.5  # a live microphone goes on after the speaker stops


def at_24k(audio: np.ndarray) -> bytes:
    return to_pcm16(soxr.resample(audio, 16_000, PCM_RATE, quality="HQ"))


def append(chunk: bytes) -> dict[str, Any]:
    return {"type": "input_audio_buffer.append", "audio": base64.b64encode(chunk).decode()}


async def realtime_session(gateway: ManagedProcess, audio: bytes, session: dict) -> list[dict]:
    """Connect with the SDK, configure, stream `audio` (24 kHz PCM16) in 300 ms appends on a
    real-time schedule, then wait until every committed item is completed."""
    client = AsyncOpenAI(base_url=f"{gateway.url}/v1", api_key=KEY)
    events: list[dict] = []
    async with client.realtime.connect(extra_query={"intent": "transcription"}) as connection:
        first = check_realtime_event(json.loads(await connection.recv_bytes()))
        assert first["type"] == "session.created"
        assert first["session"]["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
        await connection.session.update(session=session)  # type: ignore[arg-type]  # a plain dict, not the SDK's TypedDict
        updated = check_realtime_event(json.loads(await connection.recv_bytes()))
        assert updated["type"] == "session.updated", updated

        async def reader() -> None:
            while not (sending.done() and settled(events)):
                try:  # the SDK's recv is safe to cancel: nothing is lost
                    raw = await asyncio.wait_for(connection.recv_bytes(), timeout=0.5)
                except TimeoutError:
                    continue
                events.append(check_realtime_event(json.loads(raw)))

        async def sender() -> None:
            step = PCM_RATE * 2 * APPEND_MS // 1000
            loop = asyncio.get_running_loop()
            began = loop.time()
            for index, offset in enumerate(range(0, len(audio), step)):
                await asyncio.sleep(max(0, began + (index + 1) * APPEND_MS / 1000 - loop.time()))
                await connection.input_audio_buffer.append(
                    audio=base64.b64encode(audio[offset : offset + step]).decode()
                )

        sending = asyncio.create_task(sender())
        await asyncio.wait_for(asyncio.gather(sending, reader()), timeout=120)
    return events


def settled(events: list[dict]) -> bool:
    """Every turn that started has stopped, and every committed item is complete."""
    kinds = [e["type"] for e in events]
    finished = kinds.count("conversation.item.input_audio_transcription.completed")
    finished += kinds.count("conversation.item.input_audio_transcription.failed")
    started = kinds.count("input_audio_buffer.speech_started")
    stopped = kinds.count("input_audio_buffer.speech_stopped")
    committed = kinds.count("input_audio_buffer.committed")
    return committed > 0 and started == stopped and finished == committed


def by_item(events: list[dict]) -> dict[str, list[tuple[int, dict]]]:
    items: dict[str, list[tuple[int, dict]]] = {}
    for index, event in enumerate(events):
        if "item_id" in event:
            items.setdefault(event["item_id"], []).append((index, event))
    return items


def test_realtime_transcription_session_through_the_sdk(
    openai_gateway, manifest, whole_file_text
) -> None:
    """fleurs-pt-000 streamed in real time (300 ms appends, 24 kHz) with server VAD: each turn
    gives speech_started, speech_stopped, committed, deltas, then completed; the completed
    transcripts are as good as our own protocol's stream mode on the same audio (promise row
    `realtime-vs-stream`), which is as good as the whole file (`stream-vs-whole-file`)."""
    clip = manifest[CLIP]
    audio = read_wav(clip.path)
    trailing = np.zeros(int(TRAILING_SILENCE_SEC * 16_000), np.float32)
    session = {
        "type": "transcription",
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": PCM_RATE},
                "transcription": {"model": "gpt-4o-transcribe", "language": "pt"},
                "turn_detection": {"type": "server_vad", "silence_duration_ms": 500},
            }
        },
    }
    events = asyncio.run(
        realtime_session(openai_gateway, at_24k(np.concatenate([audio, trailing])), session)
    )
    assert not [e for e in events if e["type"] == "error"], events
    completed: list[str] = []
    for seen in by_item(events).values():
        kinds = [e["type"] for _, e in seen]
        assert kinds[:1] == ["input_audio_buffer.speech_started"], kinds
        stopped = kinds.index("input_audio_buffer.speech_stopped")
        assert kinds[stopped + 1] == "input_audio_buffer.committed", kinds
        done = seen[-1][1]
        assert done["type"] == "conversation.item.input_audio_transcription.completed", kinds
        assert kinds.count(done["type"]) == 1
        if done["transcript"]:  # deltas came first, for every item with words
            assert "conversation.item.input_audio_transcription.delta" in kinds[:-1], kinds
        start = seen[0][1]["audio_start_ms"]
        end = seen[stopped][1]["audio_end_ms"]
        assert 0 <= start < end <= (audio.size / 16 + 500) and done["usage"]["seconds"] > 0
        completed.append(done["transcript"])
    assert len(completed) >= 2, completed  # the clip's pauses end turns
    theirs = wer(clip.reference_text, " ".join(completed))

    # our own protocol's stream mode on the same audio, the same way
    url = openai_gateway.url.replace("http", "ws") + f"/ws/transcribe?api_key={KEY}"
    start = {"language": "pt", "mode": "stream", "sample_rate": PCM_RATE}
    ours_events = asyncio.run(
        run_session(url, at_24k(audio), start, frame_bytes=PCM_RATE * 2 * 3 // 10, realtime_ms=300)
    )
    ours = wer(clip.reference_text, text_of(ours_events))
    print(f"realtime {completed}: WER {theirs:.2%}; our stream mode: WER {ours:.2%}")
    hold("realtime-vs-stream", theirs, ours, clip.reference_text)
    whole = wer(clip.reference_text, whole_file_text(CLIP))
    hold("stream-vs-whole-file", ours, whole, clip.reference_text, "24 kHz, real time")


def test_manual_commits_of_g711_audio(openai_gateway, worker, manifest) -> None:
    """Turn detection off, audio/pcmu (8 kHz mu-law): the client commits; the item completes
    without more audio, as good as the worker's whole file of the same narrow-band sound at
    16 kHz (promise row `narrowband-vs-16k`). A clear drops what was not committed."""
    clip = manifest["ufpalign-coxinha"]
    mulaw = mulaw_encode(soxr.resample(read_wav(clip.path), 16_000, 8000, quality="HQ"))

    async def go() -> list[dict]:
        client = AsyncOpenAI(base_url=f"{openai_gateway.url}/v1", api_key=KEY)
        async with client.realtime.connect(extra_query={"intent": "transcription"}) as conn:
            session = {"format": {"type": "audio/pcmu"}, "turn_detection": None}
            session["transcription"] = {"model": "whisper-1", "language": "pt"}
            await conn.session.update(
                session={"type": "transcription", "audio": {"input": session}}
            )
            for offset in range(0, len(mulaw), 2400):  # 300 ms at 8 kHz, as fast as it goes
                await conn.input_audio_buffer.append(
                    audio=base64.b64encode(mulaw[offset : offset + 2400]).decode()
                )
            await conn.input_audio_buffer.commit()
            await conn.input_audio_buffer.append(audio=base64.b64encode(b"\xff" * 8000).decode())
            await conn.input_audio_buffer.clear()
            await conn.input_audio_buffer.commit()  # nothing left: an error, the session goes on
            events: list[dict] = []
            kinds: set[str] = set()
            while not {"error", "conversation.item.input_audio_transcription.completed"} <= kinds:
                raw = await asyncio.wait_for(conn.recv_bytes(), timeout=60)
                events.append(check_realtime_event(json.loads(raw)))
                kinds.add(events[-1]["type"])
            return events

    events = asyncio.run(go())
    kinds = [e["type"] for e in events]
    assert "input_audio_buffer.speech_started" not in kinds  # no server VAD
    assert kinds.index("input_audio_buffer.committed") < kinds.index("input_audio_buffer.cleared")
    error = next(e for e in events if e["type"] == "error")
    assert error["error"]["code"] == "input_audio_buffer_commit_empty"
    done = next(e for e in events if e["type"].endswith("transcription.completed"))
    assert done["usage"]["seconds"] == pytest.approx(clip.duration_s, abs=0.1)
    narrow = soxr.resample(MULAW[np.frombuffer(mulaw, np.uint8)], 8000, 16_000, quality="HQ")
    response = httpx.post(
        f"{worker.url}/transcribe",
        files={"file": ("narrow.wav", wav_bytes(narrow))},
        data={"language": "pt"},
        timeout=120,
    )
    assert response.status_code == 200, response.text
    reference = clip.reference_text
    at_16k = wer(reference, response.json()["text"])
    hold("narrowband-vs-16k", wer(reference, done["transcript"]), at_16k, reference, "pcmu")


def test_realtime_keys_and_origins(openai_gateway) -> None:
    """Authorization: Bearer (the SDK's way), OpenAI's browser subprotocol, or refused with an
    error event and 1008; a page from another origin is refused too."""
    url = openai_gateway.url.replace("http", "ws") + "/v1/realtime?intent=transcription"

    async def first_event(**kwargs: Any) -> tuple[dict, Any]:
        async with websockets.connect(url, **kwargs) as ws:
            event = check_realtime_event(json.loads(await ws.recv()))
            if event["type"] == "error":
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    await ws.recv()
                return event, closed.value.rcvd.code
            return event, ws.subprotocol

    async def go() -> None:
        browser = ["realtime", f"openai-insecure-api-key.{KEY}"]
        event, chosen = await first_event(subprotocols=browser, origin=GOOD_ORIGIN)
        assert event["type"] == "session.created" and chosen == "realtime"
        event, code = await first_event(additional_headers={"Authorization": "Bearer nope"})
        assert event["error"]["code"] == "invalid_api_key" and code == 1008
        event, code = await first_event(subprotocols=browser, origin="https://evil.example")
        assert event["error"]["code"] == "forbidden_origin" and code == 1008

    asyncio.run(go())


def test_a_draining_gateway_completes_what_was_said(
    worker, log_dir, manifest, whole_file_text
) -> None:
    """SIGTERM with audio not yet committed (turn detection off): the gateway commits it,
    completes the item, then closes with 1001 (going away). Nothing accepted is lost: the item
    is as good as the whole file (promise row `file-vs-whole-file`)."""
    clip = manifest["ufpalign-coxinha"]
    env = openai_gateway_env()
    proc = gateway_process(free_port(), worker.url, env=env, log_dir=log_dir, name="gw-drain")
    proc.start().wait_ready(timeout=60)
    url = proc.url.replace("http", "ws") + "/v1/realtime?intent=transcription"
    events: list[dict] = []
    try:
        with connect(url, additional_headers={"Authorization": f"Bearer {KEY}"}) as ws:
            update = {"type": "transcription", "audio": {"input": {"turn_detection": None}}}
            ws.send(json.dumps({"type": "session.update", "session": update}))
            ws.send(json.dumps(append(at_24k(read_wav(clip.path)))))
            ws.send(json.dumps({"type": "session.update", "session": {"type": "transcription"}}))
            while len([e for e in events if e["type"] == "session.updated"]) < 2:
                events.append(check_realtime_event(json.loads(ws.recv(timeout=20))))
            stopping = threading.Thread(target=proc.stop)  # SIGTERM: the gateway drains
            stopping.start()
            with pytest.raises(websockets.ConnectionClosed) as closed:
                while True:
                    events.append(check_realtime_event(json.loads(ws.recv(timeout=30))))
            stopping.join()
    finally:
        proc.stop()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
    kinds = [e["type"] for e in events]
    assert "input_audio_buffer.committed" in kinds, kinds
    done = events[-1]
    assert done["type"] == "conversation.item.input_audio_transcription.completed", kinds
    reference = clip.reference_text
    whole = wer(reference, whole_file_text(clip.id))
    hold("file-vs-whole-file", wer(reference, done["transcript"]), whole, reference, "drained")
