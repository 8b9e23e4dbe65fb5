"""Gateway + worker over real sockets with the real model."""

from __future__ import annotations

import asyncio
import itertools
import json

import httpx
import numpy as np
import psutil
import pytest
import websockets

from api.audio_input import MULAW
from asr.audio import resample
from bench.scoring import wer
from contracts.process import GATEWAY_MALLOC, WORKER_MALLOC
from launcher.processes import ManagedProcess
from tests.audio_utils import mulaw_encode, read_wav, silence, to_pcm16, wav_bytes
from tests.backend import scaled
from tests.metrics_utils import scrape, value
from tests.promises import hold
from tests.ws_utils import check_event, run_session, text_of, transcripts

LONG = "pt-longform-dev"
# Partials off in the runs compared word for word: the draft lane shares the worker's CPU.
PT = {"language": "pt", "partials": False}


def ws_url(gateway: ManagedProcess) -> str:
    return gateway.url.replace("http", "ws") + "/ws/transcribe"


@pytest.fixture(scope="module")
def long_audio(manifest) -> np.ndarray:
    return read_wav(manifest[LONG].path)


@pytest.fixture(scope="module")
def full_speed(gateway, long_audio) -> list[dict]:
    """The long-form clip sent as fast as the gateway reads it (backpressure paces it): the
    windows depend on the audio alone, so the text is a real-time session's."""
    return asyncio.run(run_session(ws_url(gateway), to_pcm16(long_audio), PT))


@pytest.mark.backend
def test_long_form_stream_in_order_and_close_to_whole_file(
    gateway, full_speed, manifest, whole_file_text
) -> None:
    kinds = [e["event"] for e in full_speed]
    assert kinds[0] == "ready" and kinds[-1] == "end"
    assert "error" not in kinds
    ready = full_speed[0]
    assert ready["protocol"] == "1"
    assert ready["config"]["batch_window_sec"] == 5.0
    assert ready["config_sources"]["batch_window_sec"] == "default"
    assert ready["config"]["language"] == "pt"
    segments = transcripts(full_speed)
    assert len(segments) >= 6
    assert [s["segment_id"] for s in segments] == list(range(len(segments)))
    assert not any(s["behind"] for s in segments)  # the pool kept up: no window grew
    words = [w for s in segments for w in s["words"]]
    assert all(a["start"] <= b["start"] for a, b in itertools.pairwise(words))
    assert all(0 <= w["start"] <= w["end"] <= manifest[LONG].duration_s + 0.05 for w in words)
    reference = manifest[LONG].reference_text
    whole = wer(reference, whole_file_text(LONG))
    hold("batch-vs-whole-file", wer(reference, text_of(full_speed)), whole, reference)
    end = full_speed[-1]["summary"]
    assert end["audio_sec"] == pytest.approx(manifest[LONG].duration_s, abs=0.01)
    assert end["transcribed_sec"] == pytest.approx(end["audio_sec"], abs=0.01)
    log = [json.loads(line) for line in gateway.log_text().splitlines() if line.startswith("{")]
    starts = [e for e in log if e.get("event") == "batch_stream_start"]
    mine = [e for e in starts if e["session_id"] == ready["session_id"]]
    assert mine and mine[0]["batch_window"] == 5.0 and mine[0]["max_batch_window"] == 10.0


def test_the_same_audio_gives_the_same_text_at_real_time(gateway, full_speed, long_audio) -> None:
    """The suite's one long-form real-time session: 300 ms frames on a real-time schedule, the
    way a live client sends them, against the same audio sent as fast as possible in frames
    that end mid-sample. Where windows are cut depends on the audio, never on when frames or
    results arrived, so the transcripts are identical, word times included."""
    realtime = asyncio.run(
        run_session(ws_url(gateway), to_pcm16(long_audio), PT, frame_bytes=9600, realtime_ms=300)
    )
    assert "error" not in [e["event"] for e in realtime]
    assert not any(t["behind"] for t in transcripts(realtime))
    assert [t["words"] for t in transcripts(realtime)] == [
        t["words"] for t in transcripts(full_speed)
    ]


@pytest.mark.backend
@pytest.mark.parametrize(
    ("encoding", "rate"), [("mulaw", 8000), ("pcm_f32le", 44100), ("pcm_s16le", 48000)]
)
def test_other_encodings_match_16k(
    gateway, full_speed, long_audio, manifest, encoding: str, rate: int
) -> None:
    """Streamed in frames that end mid-sample, converted at the edge: as good as the 16 kHz
    run's text (promise row `encoding-vs-16k`). 8 kHz mu-law carries less than 16 kHz
    (telephone band), so its run is compared with the same telephone-quality audio converted
    offline and sent at 16 kHz (row `narrowband-vs-16k`): the test isolates the gateway."""
    audio = resample(long_audio, 16000, rate)
    if encoding == "mulaw":
        payload = mulaw_encode(audio)
        same_content = resample(MULAW[np.frombuffer(payload, np.uint8)], 8000, 16000)
        reference_events = asyncio.run(run_session(ws_url(gateway), to_pcm16(same_content), PT))
    else:
        payload = audio.astype("<f4").tobytes() if encoding == "pcm_f32le" else to_pcm16(audio)
        reference_events = full_speed
    frame = int(rate * 0.3) * {"mulaw": 1, "pcm_f32le": 4, "pcm_s16le": 2}[encoding] + 1  # odd
    start = {**PT, "encoding": encoding, "sample_rate": rate}
    events = asyncio.run(run_session(ws_url(gateway), payload, start, frame_bytes=frame))
    assert "error" not in [e["event"] for e in events]
    reference = manifest[LONG].reference_text
    row = "narrowband-vs-16k" if encoding == "mulaw" else "encoding-vs-16k"
    at_16k = wer(reference, text_of(reference_events))
    hold(row, wer(reference, text_of(events)), at_16k, reference, what=f"{encoding} {rate} Hz")


@pytest.mark.backend
def test_two_channels_are_transcribed_and_labelled_apart(gateway, manifest) -> None:
    """Each channel of a stereo session gets the text its audio gets alone in a mono session:
    channels share nothing but the connection (the same windows, the same requests)."""
    left = read_wav(manifest["ufpalign-coxinha"].path)
    right = read_wav(manifest["fleurs-pt-004"].path)
    n = max(left.size, right.size) + 16000
    stereo = np.zeros((n, 2), dtype=np.float32)
    stereo[: left.size, 0] = left
    stereo[: right.size, 1] = right
    events = asyncio.run(
        run_session(
            ws_url(gateway), to_pcm16(stereo.reshape(-1)), {"channels": 2, "language": "pt"}
        )
    )
    assert {e["channel"] for e in transcripts(events)} == {0, 1}
    for channel in (0, 1):
        mono = to_pcm16(stereo[:, channel].copy())
        alone = asyncio.run(run_session(ws_url(gateway), mono, {"language": "pt"}))
        assert not any(t["behind"] for t in transcripts(events) + transcripts(alone))
        assert text_of(events, channel) == text_of(alone), channel


def test_processes_run_with_their_malloc_settings(gateway, worker) -> None:
    """Both re-executed themselves with the settings that keep their memory flat."""
    assert GATEWAY_MALLOC.items() <= psutil.Process(gateway.proc.pid).environ().items()
    assert WORKER_MALLOC.items() <= psutil.Process(worker.proc.pid).environ().items()


def test_profile_and_explicit_values_in_ready(gateway) -> None:
    async def go() -> dict:
        async with websockets.connect(ws_url(gateway)) as ws:
            await ws.send(
                json.dumps(
                    {
                        "event": "start",
                        "batch_window_sec": 2.0,
                        "max_batch_window_sec": 10.0,
                        "enable_insights": False,
                        "provider": "paneas",
                        "profile": "ultra_fast",
                        "shiny_new_field": 1,
                    }
                )
            )
            ready = check_event(await ws.recv())
            await ws.send(json.dumps({"event": "stop"}))
            rest = [check_event(m) async for m in ws]
            assert rest[-1]["event"] == "end"
            return ready

    ready = asyncio.run(go())
    assert ready["config"]["batch_window_sec"] == 2.0
    assert ready["config"]["max_batch_window_sec"] == 10.0
    assert ready["config"]["beam_size"] == 3  # from the profile
    assert ready["config_sources"] == {
        "batch_window_sec": "explicit",
        "max_batch_window_sec": "explicit",
        "beam_size": "profile",
        "best_of": "profile",
    }
    assert any("shiny_new_field" in w for w in ready["warnings"])
    assert any("paneas" in w for w in ready["warnings"])


async def _exchange(url: str, frames: list[str | bytes], expect: int) -> list[dict]:
    """Send frames, collect `expect` events (all validated)."""
    events = []
    async with websockets.connect(url, max_size=2**24) as ws:
        for frame in frames:
            await ws.send(frame)
        while len(events) < expect:
            events.append(check_event(await asyncio.wait_for(ws.recv(), 30)))
    return events


def test_bad_messages_get_errors_and_the_session_goes_on(gateway) -> None:
    start = json.dumps({"event": "start", "language": "pt"})
    frames = [
        "not json",
        json.dumps(["a", "list"]),
        json.dumps({"event": "dance"}),
        b"\x00\x01" * 100,  # audio before start
        json.dumps({"event": "stop"}),  # stop before start
        json.dumps({"event": "start", "batch_window_sec": "2.0"}),
        json.dumps({"event": "start", "batch_window_sec": -1}),
        '{"event": "start", "batch_window_sec": NaN}',
        json.dumps({"event": "start", "language": "klingon"}),
        json.dumps({"event": "start", "timeline_offset": 100, "context_samples": 200}),
        json.dumps(
            {
                "event": "start",
                "timeline_offset": 900,
                "context_samples": 200,
                "context_word_starts": [0],
            }
        ),
        start,
        start,  # a second start
        json.dumps({"event": "keepalive"}),
        json.dumps({"event": "stop"}),
    ]
    events = asyncio.run(_exchange(ws_url(gateway), frames, expect=13))
    codes = [e.get("code") for e in events if e["event"] == "error"]
    assert codes == [
        "bad_message",
        "bad_message",
        "bad_message",
        "not_started",
        "not_started",
        "invalid_config",
        "invalid_config",
        "invalid_config",
        "invalid_config",
        "invalid_config",  # context reaching before the timeline's start
        "invalid_config",  # a context word outside the context
        "already_started",
    ]
    assert [e["event"] for e in events if e["event"] != "error"][:1] == ["ready"]
    assert not any(e.get("fatal") for e in events if e["event"] == "error")


def test_frame_over_the_limit_closes_with_1009(gateway) -> None:
    async def go() -> tuple[dict, int]:
        async with websockets.connect(ws_url(gateway), max_size=2**24) as ws:
            await ws.send(json.dumps({"event": "start"}))
            check_event(await ws.recv())
            await ws.send(b"\x00" * (1024 * 1024 + 2))
            error = check_event(await ws.recv())
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.recv()
            return error, closed.value.rcvd.code

    error, code = asyncio.run(go())
    assert error["code"] == "frame_too_large" and error["fatal"] is True
    assert code == 1009


@pytest.mark.backend
def test_odd_bytes_and_a_fraction_of_a_second_are_flushed(gateway, manifest) -> None:
    """2.1 s, shorter than a window, in frames of an odd number of bytes: all of it is
    transcribed, and the text is the one whole 300 ms frames give."""
    audio = to_pcm16(read_wav(manifest["ufpalign-m-001"].path))
    events = asyncio.run(run_session(ws_url(gateway), audio, {"language": "pt"}, frame_bytes=4801))
    even = asyncio.run(run_session(ws_url(gateway), audio, {"language": "pt"}))
    assert text_of(events) and text_of(events) == text_of(even)
    assert events[-1]["summary"]["audio_sec"] == pytest.approx(2.104, abs=0.001)


def test_worker_failure_names_the_span(worker, log_dir, manifest) -> None:
    from launcher.processes import free_port, gateway_process

    port = free_port()
    dead = f"http://127.0.0.1:{free_port()}"  # nobody listens there
    env = {"ASR_WORKER_OUTAGE_SEC": "1"}  # give up on the absent pool quickly
    proc = gateway_process(
        port, dead, env=env, log_dir=log_dir, name="gateway-dead-upstream"
    ).start()
    proc.ready_url = None
    proc.wait_ready()
    try:
        for _ in range(100):
            try:
                httpx.get(f"{proc.url}/health", timeout=1)
                break
            except httpx.HTTPError:
                asyncio.run(asyncio.sleep(0.05))
        assert httpx.get(f"{proc.url}/ready").status_code == 503
        audio = to_pcm16(read_wav(manifest["ufpalign-m-001"].path))  # speech: it must be sent
        events = asyncio.run(run_session(ws_url(proc), audio, {"batch_window_sec": 1.0}))
        errors = [e for e in events if e["event"] == "error"]
        assert errors and {e["code"] for e in errors} == {"worker_failed"}
        spans = [e["span"] for e in errors]
        # the failed spans name exactly the audio that was lost: all of it, in order, once
        assert spans[0]["start"] == 0.0 and all(s["channel"] == 0 for s in spans)
        assert all(a["end"] == pytest.approx(b["start"]) for a, b in itertools.pairwise(spans))
        assert spans[-1]["end"] == pytest.approx(2.104, abs=0.001)
        summary = events[-1]["summary"]
        assert events[-1]["event"] == "end" and summary["failed_spans"] == spans
        assert summary["segments"] == 0 and summary["transcribed_sec"] == pytest.approx(2.104)
    finally:
        proc.stop()


def test_metrics_move(gateway, manifest) -> None:
    before = scrape(gateway.url)
    audio = to_pcm16(read_wav(manifest["ufpalign-coxinha"].path))
    events = asyncio.run(run_session(ws_url(gateway), audio, {"language": "pt"}))
    after = scrape(gateway.url)
    assert value(after, "asr_sessions_total") - value(before, "asr_sessions_total") == 1
    received = value(after, "asr_audio_seconds_total", stage="received") - value(
        before, "asr_audio_seconds_total", stage="received"
    )
    assert received == pytest.approx(4.5, abs=0.01)
    windows = value(after, "asr_batch_duration_seconds_count") - value(
        before, "asr_batch_duration_seconds_count"
    )
    assert windows >= 1
    words = sum(len(t["words"]) for t in transcripts(events))
    latency = value(after, "asr_final_word_latency_seconds_count") - value(
        before, "asr_final_word_latency_seconds_count"
    )
    assert latency == words
    assert value(after, "asr_active_sessions") == 0


@pytest.mark.backend
@pytest.mark.parametrize("fmt", ["json", "text", "srt", "vtt", "verbose_json"])
def test_file_endpoint_formats(gateway, manifest, whole_file_text, fmt: str) -> None:
    """Every response format; the text as good as the worker's whole file (promise row
    `file-vs-whole-file`)."""
    clip = manifest["jfk"]
    data = {"response_format": fmt, "timestamp_granularities[]": ["word", "segment"]}
    response = httpx.post(
        f"{gateway.url}/v1/audio/transcriptions",
        files={"file": ("jfk.wav", clip.path.read_bytes())},
        data=data,
        timeout=scaled(120),
    )
    assert response.status_code == 200, response.text
    if fmt in ("json", "text"):
        text = response.json()["text"] if fmt == "json" else response.text
        reference = clip.reference_text
        whole = wer(reference, whole_file_text("jfk"))
        hold("file-vs-whole-file", wer(reference, text), whole, reference)
    elif fmt == "srt":
        assert response.text.startswith("1\n00:00:00,") and " --> " in response.text
    elif fmt == "vtt":
        assert response.text.startswith("WEBVTT\n\n00:00:00.")
    else:
        body = response.json()
        assert body["language"] == "en" and body["duration"] == pytest.approx(11.0)
        assert body["segments"] and body["words"][0]["word"] == "And"


@pytest.mark.backend
def test_file_endpoint_stitches_long_audio(gateway, worker, manifest) -> None:
    """63 s of speech (pieces of <= 30 s cut at pauses) comes back in order with offsets, as
    good as the worker transcribing the whole file at once (faster-whisper's own 30 s steps;
    promise row `file-vs-whole-file`)."""
    clips = ["fleurs-pt-000", "fleurs-pt-001", "fleurs-pt-002", "fleurs-pt-003", "fleurs-pt-004"]
    audio = wav_bytes(np.concatenate([read_wav(manifest[c].path) for c in clips]))
    response = httpx.post(
        f"{gateway.url}/v1/audio/transcriptions",
        files={"file": ("long.wav", audio)},
        data={"response_format": "verbose_json", "timestamp_granularities[]": "word"},
        timeout=scaled(300),
    )
    body = response.json()
    whole = httpx.post(
        f"{worker.url}/transcribe",
        files={"file": ("long.wav", audio)},
        data={"language": "pt"},
        timeout=scaled(300),
    )
    assert whole.status_code == 200, whole.text
    reference = " ".join(manifest[c].reference_text for c in clips)
    measured, at_once = wer(reference, body["text"]), wer(reference, whole.json()["text"])
    hold("file-vs-whole-file", measured, at_once, reference)
    starts = [w["start"] for w in body["words"]]
    assert starts == sorted(starts) and starts[-1] > 50


@pytest.mark.parametrize(
    ("content", "form", "status"),
    [
        (b"", {}, 400),
        (b"garbage" * 100, {}, 415),
        (None, {"language": "xx"}, 422),
        (None, {"response_format": "docx"}, 422),
    ],
)
def test_file_endpoint_bad_input(gateway, content, form, status) -> None:
    body = wav_bytes(silence(0.5)) if content is None else content
    response = httpx.post(
        f"{gateway.url}/v1/audio/transcriptions", files={"file": ("a.wav", body)}, data=form
    )
    assert response.status_code == status, response.text


def test_frontend_served_without_stale_cache(gateway) -> None:
    first = httpx.get(f"{gateway.url}/")
    assert first.status_code == 200 and first.headers["cache-control"] == "no-cache"
    again = httpx.get(f"{gateway.url}/", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
