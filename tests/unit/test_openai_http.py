"""OpenAI's HTTP shapes without a server: the error body, model names, and the streamed file
transcription's events (deltas in order, then done with the same text)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from openai.types.audio import TranscriptionTextDeltaEvent, TranscriptionTextDoneEvent

from api.file_transcription import PieceResult
from api.openai.errors import error_body, field_of, refusal_body
from api.openai.file_stream import text_events
from api.openai.models import ALIASES, model_list, resolve, served_model_id
from api.pool import WorkerError
from contracts.logs import redact
from contracts.worker import ReadyResponse, Segment


def test_error_body_is_openais_shape() -> None:
    body = error_body(415, "cannot decode audio", "bad_audio", "file")
    assert body == {
        "error": {
            "message": "cannot decode audio",
            "type": "invalid_request_error",
            "param": "file",
            "code": "bad_audio",
        }
    }
    assert error_body(503, "busy")["error"]["type"] == "server_error"
    assert error_body(503, "busy")["error"]["code"] == "overloaded"
    assert field_of("language: 'xx' is not allowed") == "language"
    assert field_of("timestamp_granularities[]: word or segment") == "timestamp_granularities[]"
    assert field_of("upload too large: the limit is 10 bytes") is None
    assert json.loads(refusal_body("/v1/audio/translations", "too big"))["error"]["code"] == (
        "too_large"
    )
    assert json.loads(refusal_body("/other", "too big"))["detail"] == "too big"


@pytest.mark.parametrize(
    ("worker_model", "served"),
    [
        ("embedded", "whisper-base"),
        ("medium", "whisper-medium"),
        ("/m/whisper-small-ct2/", "whisper-small-ct2"),
    ],
)
def test_served_model_ids_and_aliases(worker_model: str, served: str) -> None:
    info = ReadyResponse(status="ready", model=worker_model, device="cpu", compute_type="int8",
                         languages=["pt"])  # fmt: skip
    assert served_model_id(info) == served
    assert resolve("whisper-1", served) == resolve(None, served) == resolve(served, served)
    assert resolve("gpt-4o-transcribe-diarize", served) is None
    listed = model_list(served, 0)["data"]
    assert [m["id"] for m in listed] == [served, *ALIASES]
    assert all(m.get("root") == served for m in listed[1:]) and "root" not in listed[0]


def piece(index: int, *texts: str) -> PieceResult:
    segments = [
        Segment(id=i, start=0, end=1, text=t, avg_logprob=0, no_speech_prob=0)
        for i, t in enumerate(texts)
    ]
    if not texts:
        return PieceResult(index, [], None)
    return PieceResult(index, segments, "pt", heard_sec=5.0, text_tokens=3 * len(texts))


async def collect(events: AsyncIterator[bytes]) -> list[dict]:
    out = []
    async for chunk in events:
        raw = chunk.decode()
        assert raw.startswith("data: ") and raw.endswith("\n\n")
        out.append(json.loads(raw[6:]))
    return out


def test_stream_deltas_join_to_the_done_text() -> None:
    async def pieces() -> AsyncIterator[PieceResult]:
        yield piece(0, "Olá,", "mundo.")
        yield piece(1)  # silence: no delta
        yield piece(2, "Tchau.")

    events = asyncio.run(collect(text_events(pieces(), "whisper-base")))
    deltas = [TranscriptionTextDeltaEvent.model_validate(e) for e in events[:-1]]
    done = TranscriptionTextDoneEvent.model_validate(events[-1])
    assert [d.delta for d in deltas] == ["Olá, mundo.", " Tchau."]
    assert done.text == "Olá, mundo. Tchau." == "".join(d.delta for d in deltas)
    assert done.usage is not None and (done.usage.input_tokens, done.usage.output_tokens) == (
        500,
        9,
    )
    assert done.usage.total_tokens == 509


def test_stream_failure_is_an_error_event() -> None:
    async def pieces() -> AsyncIterator[PieceResult]:
        yield piece(0, "Olá.")
        raise WorkerError("HTTP 503: busy", 503)

    events = asyncio.run(collect(text_events(pieces(), "whisper-base")))
    assert events[0]["type"] == "transcript.text.delta"
    assert events[1]["error"]["type"] == "server_error" and "busy" in events[1]["error"]["message"]


def test_openais_browser_key_is_redacted_from_logs() -> None:
    line = "sec-websocket-protocol: realtime, openai-insecure-api-key.sk-secret-1"
    assert "sk-secret" not in redact(line) and "realtime" in redact(line)
