"""A Realtime transcription session's decisions, without sockets: client events in, pipeline
events (the session core's transcripts, partials and acks) and VAD scores in, OpenAI's server
events out. The WebSocket shell (api/openai/realtime_socket.py) only moves bytes.

A manual commit ends the item at the audio received so far and follows it with a short silence
(`pad_ms`, in the client's format): the pipeline finalises a pause at once, so the item
completes without waiting for more audio, as a push-to-talk client expects. Times the client
sees (`audio_start_ms`, `audio_end_ms`, usage) leave that silence out.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from pydantic import BaseModel, ValidationError

from api.openai.items import Completed, Delta, ItemBook, ItemEvent
from api.openai.realtime_config import RealtimeConfig
from api.openai.realtime_wire import (
    CLIENT_EVENTS,
    CONVERSATION_EVENTS,
    AudioAppend,
    Cleared,
    ClientEvent,
    Committed,
    DurationUsage,
    ErrorDetail,
    RealtimeError,
    ServerEvent,
    SessionEvent,
    SessionUpdate,
    SpeechStarted,
    SpeechStopped,
    TranscriptionCompleted,
    TranscriptionDelta,
    TranscriptionFailed,
    client_error,
    new_id,
    server_error,
)
from api.openai.session_update import ConfigProblem, apply_update
from api.openai.turns import TurnDetector
from contracts.audio import SAMPLE_RATE
from contracts.events import AckEvent, ErrorEvent, PartialEvent, TranscriptEvent

MIN_COMMIT_MS = 100  # OpenAI refuses to commit less audio than this
SILENCE_BYTE = {"audio/pcm": b"\x00", "audio/pcmu": b"\xff", "audio/pcma": b"\xd5"}


@dataclass
class Reaction:
    """What a client event asks of the shell: events to send, audio for the pipeline."""

    events: list[ServerEvent] = field(default_factory=list)
    audio: bytes | None = None  # appended audio (the first starts the pipeline)
    pad: bytes | None = None  # silence after a manual commit


class RealtimeMapper:
    def __init__(
        self,
        session_id: str,
        config: RealtimeConfig,
        configured: bool,
        languages: list[str],
        max_append_bytes: int,
        pad_ms: int,
        vad_threshold: float,
        received: Callable[[], int],
        new_item_id: Callable[[], str] = lambda: new_id("item"),
    ) -> None:
        """`configured`: False until a session.update makes this a transcription session
        (a connection without ?intent=transcription). `received`: samples the pipeline has
        received (16 kHz), 0 before it starts."""
        self.session_id = session_id
        self.config = config
        self.configured = configured
        self.languages = languages
        self.max_append_bytes = max_append_bytes
        self.pad_ms = pad_ms
        self.vad_threshold = vad_threshold  # the pipeline's: where it hears speech
        self.received = received
        self.book = ItemBook(new_item_id)
        self.turns = TurnDetector(config.turn_detection) if config.turn_detection else None
        self.audio_started = False
        self.pads: list[tuple[int, int]] = []  # (where, samples) of silence added after commits

    def created(self) -> SessionEvent:
        return SessionEvent(type="session.created", session=self.config.ga_session(self.session_id))

    # ---- client events -----------------------------------------------------------------------

    def on_text(self, text: str) -> Reaction:
        try:
            payload = json.loads(text)
        except (ValueError, RecursionError):
            return _refused(client_error("invalid_json", "a client event is a JSON object"))
        if not isinstance(payload, dict) or not isinstance(payload.get("type"), str):
            return _refused(
                client_error("invalid_event", 'a client event is an object with a "type"', "type")
            )
        kind = payload["type"]
        event_id = payload.get("event_id") if isinstance(payload.get("event_id"), str) else None
        if kind in CONVERSATION_EVENTS:
            message = f"{kind!r} belongs to conversation sessions; this is a transcription session"
            return _refused(client_error("unsupported_event", message, "type", event_id))
        model = CLIENT_EVENTS.get(kind)
        if model is None:
            message = f"unknown event type {kind!r}; expected one of {', '.join(CLIENT_EVENTS)}"
            return _refused(client_error("invalid_value", message, "type", event_id))
        try:
            event = model.model_validate(payload)
        except ValidationError as exc:
            first = exc.errors()[0]
            param = ".".join(str(p) for p in first["loc"])
            code = "missing_required_parameter" if first["type"] == "missing" else "invalid_value"
            return _refused(client_error(code, f"{param}: {first['msg']}", param, event_id))
        if isinstance(event, SessionUpdate):
            return self._update(event)
        if isinstance(event, AudioAppend):
            return self._append(event)
        if kind == "input_audio_buffer.commit":
            return self._commit(event)
        return self._clear()

    def _update(self, event: SessionUpdate) -> Reaction:
        beta = event.type.startswith("transcription_session")
        try:
            config = apply_update(
                self.config, event.session, beta, self.languages, self.audio_started
            )
        except ConfigProblem as exc:
            return _refused(client_error(exc.code, exc.message, exc.param, event.event_id))
        self.config, self.configured = config, True
        vad = config.turn_detection
        if vad is None:
            self.turns = None
        elif self.turns is None:
            self.turns = TurnDetector(vad)
        else:
            self.turns.vad = vad
        if beta:
            shown = SessionEvent(
                type="transcription_session.updated", session=config.beta_session(self.session_id)
            )
        else:
            shown = SessionEvent(type="session.updated", session=config.ga_session(self.session_id))
        return Reaction([shown])

    def _append(self, event: AudioAppend) -> Reaction:
        if not self.configured:
            message = (
                "this connection is not a transcription session yet: send session.update with "
                'session.type "transcription" first (or connect with ?intent=transcription)'
            )
            return _refused(client_error("session_not_configured", message, None, event.event_id))
        if len(event.audio) > self.max_append_bytes * 4 // 3 + 4:
            return _refused(self._too_large(event.event_id))
        try:
            data = base64.b64decode(event.audio, validate=True)
        except (binascii.Error, ValueError):
            message = "audio: not valid base64"
            return _refused(client_error("invalid_value", message, "audio", event.event_id))
        if len(data) > self.max_append_bytes:
            return _refused(self._too_large(event.event_id))
        if self.config.format == "audio/pcm" and len(data) % 2:
            message = "audio: audio/pcm is 16-bit samples, so an append holds an even byte count"
            return _refused(client_error("invalid_value", message, "audio", event.event_id))
        if not data:
            return Reaction()
        self.audio_started = True
        return Reaction(audio=data)

    def _too_large(self, event_id: str | None) -> RealtimeError:
        message = f"audio: an append holds at most {self.max_append_bytes} bytes of audio"
        return client_error("audio_too_large", message, "audio", event_id)

    def _commit(self, event: ClientEvent) -> Reaction:
        at = self.received()
        buffered_ms = max(0, at - self.book.floor) * 1000 // SAMPLE_RATE
        if buffered_ms < MIN_COMMIT_MS:
            message = (
                f"Error committing input audio buffer: buffer too small. Expected at least "
                f"{MIN_COMMIT_MS}ms of audio, but buffer only has {buffered_ms}ms of audio."
            )
            code = "input_audio_buffer_commit_empty"
            return _refused(client_error(code, message, None, event.event_id))
        item, settled = self.book.commit(at)
        if self.turns is not None:
            self.turns.reset()
        events: list[ServerEvent] = [Committed(item_id=item.id, previous_item_id=item.previous_id)]
        self.pads.append((at, self.pad_ms * SAMPLE_RATE // 1000))
        _, rate = self.config.edge
        width = 2 if self.config.format == "audio/pcm" else 1
        pad = SILENCE_BYTE[self.config.format] * (self.pad_ms * rate // 1000 * width)
        return Reaction(events + self._events(settled), pad=pad)

    def _clear(self) -> Reaction:
        self.book.clear(self.received())
        if self.turns is not None:
            self.turns.reset()
        return Reaction([Cleared()])

    def flush(self) -> list[ServerEvent]:
        """The session ends (a limit, a draining server): speech still going on, or audio a
        manual client did not commit, becomes a last item, completed as the pipeline finishes."""
        at = self.received()
        if self.turns is not None and self.book.open_item is None:
            return []
        if (at - self.book.floor) * 1000 < MIN_COMMIT_MS * SAMPLE_RATE:
            return []
        item, settled = self.book.commit(at)
        committed = Committed(item_id=item.id, previous_item_id=item.previous_id)
        return [committed, *self._events(settled)]

    # ---- the pipeline ------------------------------------------------------------------------

    def on_vad(self, first: int, probs: np.ndarray) -> list[ServerEvent]:
        """New VAD scores of the session's audio: server VAD turns, and where the pipeline
        hears speech (what items wait for)."""
        events: list[ServerEvent] = []
        for turn in self.turns.feed(first, probs) if self.turns is not None else []:
            if turn.kind == "started":
                item = self.book.open()
                assert self.turns is not None
                padding = self.turns.vad.prefix_padding_ms * SAMPLE_RATE // 1000
                begin = max(item.start, turn.at - padding)
                events.append(SpeechStarted(audio_start_ms=self.client_ms(begin), item_id=item.id))
                events.extend(self._events(self.book.advance(0)))  # words heard before it
                continue
            open_item = self.book.open_item
            if open_item is None:
                continue
            settled = self.book.close(open_item, turn.at)
            events.append(SpeechStopped(audio_end_ms=self.client_ms(turn.at), item_id=open_item.id))
            events.append(Committed(item_id=open_item.id, previous_item_id=open_item.previous_id))
            events.extend(self._events(settled))
        events.extend(self._events(self.book.hear(first, probs >= self.vad_threshold)))
        return events

    def on_pipeline(self, event: BaseModel) -> list[ServerEvent]:
        """An event of the session pipeline (contracts.events)."""
        if isinstance(event, TranscriptEvent):
            words = [(round(w.start * SAMPLE_RATE), w.word) for w in event.words]
            return self._events(self.book.add_words(words))
        if isinstance(event, PartialEvent):
            start = None if event.start is None else round(event.start * SAMPLE_RATE)
            return self._events(self.book.set_partial(event.text, start))
        if isinstance(event, AckEvent):
            return self._events(self.book.advance(event.committed_offset))
        if isinstance(event, ErrorEvent):
            if event.span is not None:  # its items fail once their audio is final
                failed_from = event.span.start * SAMPLE_RATE
                failed_to = event.span.end * SAMPLE_RATE
                self.book.fail(int(failed_from), int(failed_to), event.message)
                return []
            return [server_error(event.code.value, event.message)]
        return []  # ready, utterance_end, end: nothing to say in this API

    # ---- helpers -------------------------------------------------------------------------------

    def client_ms(self, position: int) -> int:
        """A timeline position as the client counts its audio (without the silence added)."""
        added = sum(min(length, max(0, position - at)) for at, length in self.pads)
        return (position - added) * 1000 // SAMPLE_RATE

    def _events(self, settled: list[ItemEvent]) -> list[ServerEvent]:
        events: list[ServerEvent] = []
        for out in settled:
            if isinstance(out, Delta):
                events.append(TranscriptionDelta(item_id=out.item_id, delta=out.text))
            elif isinstance(out, Completed) and out.failure is not None:
                error = ErrorDetail(type="server_error", code="worker_failed", message=out.failure)
                events.append(TranscriptionFailed(item_id=out.item_id, error=error))
            elif isinstance(out, Completed):
                seconds = (self.client_ms(out.end) - self.client_ms(out.start)) / 1000
                usage = DurationUsage(seconds=max(0.0, seconds))
                events.append(
                    TranscriptionCompleted(
                        item_id=out.item_id, transcript=out.transcript, usage=usage
                    )
                )
        return events


def _refused(error: RealtimeError) -> Reaction:
    return Reaction([error])
