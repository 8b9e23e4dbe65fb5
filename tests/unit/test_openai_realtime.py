"""The Realtime transcription session's pure logic without sockets: configuration updates, server
VAD turns, item bookkeeping (words, deltas, completion), and the mapper's client-event handling.
Every server event produced is validated against the official SDK's models."""

from __future__ import annotations

import base64
import itertools
import json
from typing import Any

import numpy as np
import pytest

from api.core.speech import CHUNK
from api.openai.items import Completed, Delta, ItemBook
from api.openai.realtime_config import RealtimeConfig, ServerVad
from api.openai.realtime_mapper import RealtimeMapper
from api.openai.session_update import ConfigProblem, apply_update
from api.openai.turns import TurnDetector
from contracts.events import AckEvent, ErrorCode, ErrorEvent, Span, Timing, TranscriptEvent, WordOut
from tests.openai_utils import check_realtime_event

SR = 16_000
LANGS = ["pt", "en"]


def ga(**input_fields: Any) -> dict[str, Any]:
    return {"type": "transcription", "audio": {"input": input_fields}}


# ---- configuration -----------------------------------------------------------------------------


def test_updates_change_only_what_they_name() -> None:
    config = RealtimeConfig(model="whisper-base")
    config = apply_update(config, ga(format={"type": "audio/pcmu"}), False, LANGS, False)
    assert config.format == "audio/pcmu" and config.edge == ("mulaw", 8000)
    assert config.turn_detection == ServerVad()  # untouched
    update = ga(
        transcription={"model": "gpt-4o-transcribe", "language": "PT", "prompt": "futebol"},
        turn_detection={"type": "server_vad", "silence_duration_ms": 800},
    )
    config = apply_update(config, update, False, LANGS, False)
    assert (config.model, config.language, config.prompt) == ("whisper-base", "pt", "futebol")
    assert config.turn_detection == ServerVad(silence_duration_ms=800)
    assert config.format == "audio/pcmu"
    config = apply_update(config, ga(turn_detection=None), False, LANGS, False)
    assert config.turn_detection is None  # null: the client commits


def test_beta_shape_and_shown_sessions() -> None:
    config = RealtimeConfig(model="whisper-base")
    beta = {"input_audio_format": "g711_alaw", "input_audio_transcription": {"language": "en"}}
    config = apply_update(config, beta, True, LANGS, False)
    assert config.format == "audio/pcma" and config.language == "en"
    assert config.beta_session("sess_1")["input_audio_format"] == "g711_alaw"
    shown = config.ga_session("sess_1")
    assert shown["audio"]["input"]["format"] == {"type": "audio/pcma"}
    check_realtime_event({"type": "session.updated", "event_id": "e", "session": shown})


@pytest.mark.parametrize(
    ("update", "param", "code"),
    [
        (ga(format={"type": "audio/opus"}), "session.audio.input.format.type", "invalid_value"),
        (ga(format={"type": "audio/pcm", "rate": 16000}), "session.audio.input.format.rate", None),
        (ga(transcription={"model": "tiny"}), "session.audio.input.transcription.model", None),
        (ga(transcription={"language": "xx"}), "session.audio.input.transcription.language", None),
        (
            ga(turn_detection={"type": "semantic_vad"}),
            "session.audio.input.turn_detection.type",
            None,
        ),
        (ga(turn_detection={"type": "server_vad", "threshold": 3}), None, None),
        ({"type": "realtime"}, "session.type", None),
        ("not an object", "session", "missing_required_parameter"),
    ],
)
def test_bad_updates_name_the_field(update: Any, param: str | None, code: str | None) -> None:
    with pytest.raises(ConfigProblem) as problem:
        apply_update(RealtimeConfig(model="whisper-base"), update, False, LANGS, False)
    if param is not None:
        assert problem.value.param == param
    if code is not None:
        assert problem.value.code == code
    assert problem.value.message


def test_pipeline_fields_are_fixed_once_audio_arrived() -> None:
    config = RealtimeConfig(model="whisper-base")
    with pytest.raises(ConfigProblem) as problem:
        apply_update(config, ga(transcription={"language": "en"}), False, LANGS, True)
    assert problem.value.code == "session_locked"
    turn = ga(turn_detection={"type": "server_vad", "threshold": 0.7})
    assert apply_update(config, turn, False, LANGS, True).turn_detection == ServerVad(threshold=0.7)


# ---- server VAD turns --------------------------------------------------------------------------


def test_turns_start_at_speech_and_stop_after_the_silence() -> None:
    probs = np.array([0.1] * 10 + [0.9] * 20 + [0.4] * 3 + [0.9] * 5 + [0.05] * 20, np.float32)
    detector = TurnDetector(ServerVad(silence_duration_ms=500))
    turns = detector.feed(0, probs[:25]) + detector.feed(25 * CHUNK, probs[25:])
    assert [(t.kind, t.at) for t in turns] == [
        ("started", 10 * CHUNK),
        ("stopped", 38 * CHUNK),  # the dip to 0.4 stays above 0.5 - 0.15: still speech
    ]
    strict = TurnDetector(ServerVad(threshold=0.95))
    assert strict.feed(0, probs) == []


# ---- items ---------------------------------------------------------------------------------------


def book() -> ItemBook:
    counter = itertools.count()
    return ItemBook(lambda: f"item_{next(counter)}")


def test_an_item_shows_deltas_then_completes_once_its_audio_is_final() -> None:
    items = book()
    first = items.open()
    assert items.add_words([(1000, "Olá")]) == [Delta(first.id, "Olá")]
    assert items.set_partial("mundo bom", 9000) == []  # one partial alone is not shown
    assert items.set_partial("Mundo bom dia", 9000) == [Delta(first.id, " Mundo bom")]
    assert items.add_words([(9000, "mundo,")]) == []  # agrees with what was shown
    closed = items.close(first, 20_000)
    assert closed == [] and first.committed
    assert items.advance(19_999) == []  # not final through its end yet
    assert items.add_words([(12_000, "bem.")]) == []  # "bom" was shown: deltas stop
    assert items.advance(20_000) == [Completed(first.id, "Olá mundo, bem.", 0, 20_000)]
    second = items.open()
    assert second.start == 20_000
    # a word late for the completed item goes to the next one
    assert items.add_words([(19_000, "tchau")]) == [Delta(second.id, "tchau")]


def test_words_after_the_turn_and_cleared_audio() -> None:
    items = book()
    first = items.open()
    items.add_words([(1000, "um"), (30_000, "dois")])
    items.close(first, 20_000)
    assert [w for _, w in first.words] == ["um"] and items.loose == [(30_000, "dois")]
    items.clear(40_000)
    assert items.add_words([(35_000, "três")]) == [] and items.loose == []
    second = items.open()
    items.add_words([(41_000, "quatro")])
    items.close(second, 50_000)
    done = items.advance(50_000)
    assert done[-2:] == [
        Completed(first.id, "um", 0, 20_000),
        Completed(second.id, "quatro", 40_000, 50_000),
    ]
    assert second.previous_id == first.id


def test_an_item_ending_in_silence_completes_once_its_speech_is_final() -> None:
    """The pipeline never transcribes audio without speech: an item whose end lies in silence
    is complete once the committed offset has passed its last speech."""
    items = book()
    item, _ = items.commit(40 * CHUNK)
    speech = np.zeros(50, bool)
    speech[5:20] = True
    assert items.hear(0, speech[:30]) == []  # not scored through its end yet
    assert items.advance(19 * CHUNK) == []  # speech after the offset
    assert items.hear(30 * CHUNK, speech[30:]) == []
    assert items.advance(24 * CHUNK) == [Completed(item.id, "", 0, 40 * CHUNK)]


def test_items_complete_in_order_and_failures_fail_them() -> None:
    items = book()
    item, _ = items.commit(16_000)  # manual: the buffer becomes an item
    items.fail(8000, 12_000, "worker down")
    assert items.advance(16_000) == [Completed(item.id, "", 0, 16_000, "worker down")]


# ---- the mapper ----------------------------------------------------------------------------------


class Pipeline:
    """The mapper's view of the pipeline: samples received so far."""

    def __init__(self) -> None:
        self.received = 0


def mapper(
    configured: bool = True, vad: ServerVad | None = None
) -> tuple[RealtimeMapper, Pipeline]:
    pipeline = Pipeline()
    counter = itertools.count()
    config = RealtimeConfig(model="whisper-base", turn_detection=vad)
    m = RealtimeMapper(
        "sess_1", config, configured, LANGS, 4096, 364, 0.5, lambda: pipeline.received,
        lambda: f"item_{next(counter)}",
    )  # fmt: skip
    check_realtime_event(m.created().model_dump())
    return m, pipeline


def send(m: RealtimeMapper, event: dict[str, Any] | str) -> list[dict[str, Any]]:
    reaction = m.on_text(event if isinstance(event, str) else json.dumps(event))
    return [check_realtime_event(e.model_dump()) for e in reaction.events]


def append(audio: bytes) -> dict[str, Any]:
    return {"type": "input_audio_buffer.append", "audio": base64.b64encode(audio).decode()}


@pytest.mark.parametrize(
    ("event", "code"),
    [
        ("{not json", "invalid_json"),
        ({"no": "type"}, "invalid_event"),
        ({"type": "dance"}, "invalid_value"),
        ({"type": "response.create"}, "unsupported_event"),
        ({"type": "input_audio_buffer.append"}, "missing_required_parameter"),
        ({"type": "input_audio_buffer.append", "audio": "%%%"}, "invalid_value"),
        (append(b"\x00"), "invalid_value"),  # half a 16-bit sample
        (append(b"\x00" * 5000), "audio_too_large"),
        ({"type": "input_audio_buffer.commit"}, "input_audio_buffer_commit_empty"),
        ({"type": "session.update", "session": ga(format={"type": "audio/wav"})}, "invalid_value"),
    ],
)
def test_bad_client_events_get_an_error_and_change_nothing(event: Any, code: str) -> None:
    m, _ = mapper()
    events = send(m, event)
    assert [e["type"] for e in events] == ["error"] and events[0]["error"]["code"] == code
    assert not m.audio_started and m.config.format == "audio/pcm"
    assert send(m, append(b"\x00\x01" * 10)) == [] and m.audio_started  # the session goes on


def test_audio_before_a_transcription_session_is_configured() -> None:
    m, _ = mapper(configured=False)
    assert send(m, append(b"\x00\x00"))[0]["error"]["code"] == "session_not_configured"
    assert send(m, {"type": "session.update", "session": ga()})[0]["type"] == "session.updated"
    assert m.on_text(json.dumps(append(b"\x00\x00"))).audio == b"\x00\x00"


def test_manual_commit_pads_with_silence_and_times_leave_it_out() -> None:
    m, pipeline = mapper()
    pipeline.received = SR  # one second received
    reaction = m.on_text(json.dumps({"type": "input_audio_buffer.commit"}))
    assert [e.type for e in reaction.events] == ["input_audio_buffer.committed"]
    assert reaction.pad == b"\x00" * (364 * 24 * 2)  # 364 ms of audio/pcm at 24 kHz
    pipeline.received = SR + 364 * 16 + SR // 2
    assert m.client_ms(pipeline.received) == 1500
    words = [WordOut(word="oi", start=0.2, end=0.4, probability=0.9)]
    out = m.on_pipeline(transcript(words)) + m.on_pipeline(ack(SR + 364 * 16))
    kinds = [check_realtime_event(e.model_dump())["type"] for e in out]
    assert kinds[-1] == "conversation.item.input_audio_transcription.completed"
    assert out[-1].transcript == "oi" and out[-1].usage.seconds == 1.0  # type: ignore[attr-defined]  # the last event is a completed one
    assert "conversation.item.input_audio_transcription.delta" in kinds


def test_server_vad_turns_become_items() -> None:
    m, _ = mapper(vad=ServerVad(prefix_padding_ms=300, silence_duration_ms=500))
    probs = np.array([0.0] * 20 + [0.9] * 30 + [0.0] * 20, np.float32)
    events = [check_realtime_event(e.model_dump()) for e in m.on_vad(0, probs)]
    kinds = [e["type"] for e in events]
    assert kinds == [
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
    ]
    assert events[0]["audio_start_ms"] == 20 * CHUNK * 1000 // SR - 300
    assert events[1]["audio_end_ms"] == 50 * CHUNK * 1000 // SR
    item = events[0]["item_id"]
    assert events[1]["item_id"] == events[2]["item_id"] == item
    failed = ErrorEvent(
        code=ErrorCode.worker_failed, message="pool down", span=Span(start=0.5, end=1.5)
    )
    assert m.on_pipeline(failed) == []
    out = [check_realtime_event(e.model_dump()) for e in m.on_pipeline(ack(50 * CHUNK))]
    assert [e["type"] for e in out] == ["conversation.item.input_audio_transcription.failed"]


def transcript(words: list[WordOut]) -> TranscriptEvent:
    timing = Timing(window_sec=1.0, queue_ms=0, inference_ms=0, batch_ms=0)
    text = " ".join(w.word for w in words)
    return TranscriptEvent(
        segment_id=0, text=text, words=words, start=words[0].start, end=words[-1].end,
        language="pt", timing=timing,
    )  # fmt: skip


def ack(committed: int) -> AckEvent:
    return AckEvent(received_offset=committed, committed_offset=committed)
