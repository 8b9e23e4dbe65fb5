"""The Realtime API's transcription events on the wire, as pydantic models (the shapes of the
official SDK's `openai.types.realtime`; the tests validate every frame against the SDK)."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


# ---- client -> server ------------------------------------------------------------------------


class ClientEvent(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: str
    event_id: str | None = Field(None, max_length=200)


class SessionUpdate(ClientEvent):
    """`session.update` (GA shape) or `transcription_session.update` (the beta shape)."""

    session: Any = None


class AudioAppend(ClientEvent):
    audio: str


CLIENT_EVENTS: dict[str, type[ClientEvent]] = {
    "session.update": SessionUpdate,
    "transcription_session.update": SessionUpdate,
    "input_audio_buffer.append": AudioAppend,
    "input_audio_buffer.commit": ClientEvent,
    "input_audio_buffer.clear": ClientEvent,
}
# client events of OpenAI's conversation sessions: known, but a transcription session has none
CONVERSATION_EVENTS = (
    "conversation.item.create",
    "conversation.item.delete",
    "conversation.item.retrieve",
    "conversation.item.truncate",
    "output_audio_buffer.clear",
    "response.cancel",
    "response.create",
)


# ---- server -> client ------------------------------------------------------------------------


class ServerEvent(BaseModel):
    event_id: str = Field(default_factory=lambda: new_id("event"))


class SessionEvent(ServerEvent):
    type: Literal["session.created", "session.updated", "transcription_session.updated"]
    session: dict[str, Any]


class SpeechStarted(ServerEvent):
    type: Literal["input_audio_buffer.speech_started"] = "input_audio_buffer.speech_started"
    audio_start_ms: int
    item_id: str


class SpeechStopped(ServerEvent):
    type: Literal["input_audio_buffer.speech_stopped"] = "input_audio_buffer.speech_stopped"
    audio_end_ms: int
    item_id: str


class Committed(ServerEvent):
    type: Literal["input_audio_buffer.committed"] = "input_audio_buffer.committed"
    item_id: str
    previous_item_id: str | None = None


class Cleared(ServerEvent):
    type: Literal["input_audio_buffer.cleared"] = "input_audio_buffer.cleared"


class TranscriptionDelta(ServerEvent):
    type: Literal["conversation.item.input_audio_transcription.delta"] = (
        "conversation.item.input_audio_transcription.delta"
    )
    item_id: str
    content_index: int = 0
    delta: str


class DurationUsage(BaseModel):
    type: Literal["duration"] = "duration"
    seconds: float


class TranscriptionCompleted(ServerEvent):
    type: Literal["conversation.item.input_audio_transcription.completed"] = (
        "conversation.item.input_audio_transcription.completed"
    )
    item_id: str
    content_index: int = 0
    transcript: str
    usage: DurationUsage


class ErrorDetail(BaseModel):
    type: str
    code: str | None = None
    message: str
    param: str | None = None
    event_id: str | None = None  # the client event at fault


class TranscriptionFailed(ServerEvent):
    type: Literal["conversation.item.input_audio_transcription.failed"] = (
        "conversation.item.input_audio_transcription.failed"
    )
    item_id: str
    content_index: int = 0
    error: ErrorDetail


class RealtimeError(ServerEvent):
    type: Literal["error"] = "error"
    error: ErrorDetail


def client_error(
    code: str, message: str, param: str | None = None, event_id: str | None = None
) -> RealtimeError:
    """The client's mistake: the session goes on."""
    detail = ErrorDetail(
        type="invalid_request_error", code=code, message=message, param=param, event_id=event_id
    )
    return RealtimeError(error=detail)


def server_error(code: str, message: str) -> RealtimeError:
    return RealtimeError(error=ErrorDetail(type="server_error", code=code, message=message))
