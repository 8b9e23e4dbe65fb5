"""The client <-> gateway protocol (version "1"): every message and event as a pydantic model.

docs/protocol.md describes the same models for humans; tests validate every frame the server
sends against `ServerEvent`.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator, model_validator

PROTOCOL_VERSION = "1"
MAX_CONTEXT_SAMPLES = 20 * 16000  # a start's context_samples: the most context_sec allows
MAX_CONTEXT_WORDS = 200

Encoding = Literal["pcm_s16le", "pcm_f32le", "mulaw", "alaw"]
Mode = Literal["batch", "stream"]
WindowSec = Annotated[float, Field(gt=0, strict=True, allow_inf_nan=False)]
Count = Annotated[int, Field(ge=1, le=20, strict=True)]


class ErrorCode(StrEnum):
    bad_message = "bad_message"  # not JSON, not an object, or an unknown event
    not_started = "not_started"  # audio or stop before start
    already_started = "already_started"  # a second start in one session
    invalid_config = "invalid_config"  # start fields of the wrong type or range
    frame_too_large = "frame_too_large"  # a frame over ASR_MAX_FRAME_BYTES (closes with 1009)
    busy = "busy"  # capacity reached (closes with 1013; retry later)
    worker_failed = "worker_failed"  # a window could not be transcribed (span names it)
    resume_unknown = "resume_unknown"  # the session to resume is not known here
    unauthorized = "unauthorized"  # missing or wrong API key (closes with 1008)
    forbidden_origin = "forbidden_origin"  # a browser page from another site (closes with 1008)
    session_timeout = "session_timeout"  # the session ran past its maximum duration
    idle_timeout = "idle_timeout"  # no audio for too long
    slow_consumer = "slow_consumer"  # the client stopped reading events
    internal = "internal"  # a bug: please report it


# ---- client -> server --------------------------------------------------------------------


class ResumeRequest(BaseModel):
    session_id: str = Field(max_length=64)
    offset: int = Field(ge=0, strict=True, description="the client's committed_offset")
    last_segment_id: int = Field(-1, ge=-1, strict=True, description="last transcript seen")


class StartMessage(BaseModel):
    """`{"event":"start", ...}`; unknown fields are accepted and reported in ready.warnings."""

    model_config = ConfigDict(extra="allow")

    event: Literal["start"]
    # the reference payload
    batch_window_sec: WindowSec | None = None
    max_batch_window_sec: WindowSec | None = None
    enable_insights: bool = False
    provider: str | None = None
    # ours
    profile: Literal["max_quality", "balanced", "responsive", "ultra_fast"] | None = None
    language: str | None = None
    beam_size: Count | None = None
    best_of: Count | None = None
    sample_rate: int = Field(16000, ge=8000, le=48000, strict=True)
    encoding: Encoding = "pcm_s16le"
    channels: Literal[1, 2] = 1
    hotwords: str | None = Field(None, max_length=1000)
    prompt: str | None = Field(None, max_length=1000)
    partials: bool = True
    mode: Mode = "batch"
    min_chunk_sec: WindowSec | None = None
    resume: ResumeRequest | None = None
    timeline_offset: int = Field(
        0, ge=0, strict=True, description="16 kHz samples: continue an earlier session's timeline"
    )
    context_samples: int = Field(
        0,
        ge=0,
        le=MAX_CONTEXT_SAMPLES,
        strict=True,
        description="16 kHz samples sent before timeline_offset: heard as context, never "
        "transcribed again (a new session continuing one the gateway lost)",
    )
    context_word_starts: list[int] = Field(
        default_factory=list,
        max_length=MAX_CONTEXT_WORDS,
        description="16 kHz sample offsets where the words in the context begin (as transcripts "
        "gave them): the gateway picks each window's context at a word's start",
    )

    @model_validator(mode="after")
    def _context_within_timeline(self) -> StartMessage:
        if self.context_samples > self.timeline_offset:
            raise ValueError("context_samples cannot reach before the timeline's start")
        begin = self.timeline_offset - self.context_samples
        if any(not begin <= s < self.timeline_offset for s in self.context_word_starts):
            raise ValueError("context_word_starts must lie within the context")
        return self

    @field_validator("language")
    @classmethod
    def _lower(cls, value: str | None) -> str | None:
        if value is None or value.strip().lower() in ("", "auto"):
            return None
        return value.strip().lower()

    def unknown_fields(self) -> list[str]:
        return sorted((self.model_extra or {}).keys())


class StopMessage(BaseModel):
    event: Literal["stop"]


class KeepaliveMessage(BaseModel):
    event: Literal["keepalive"]


ClientMessage = Annotated[
    StartMessage | StopMessage | KeepaliveMessage, Field(discriminator="event")
]
client_message = TypeAdapter(ClientMessage)


# ---- server -> client --------------------------------------------------------------------


class WordOut(BaseModel):
    word: str
    start: float
    end: float
    probability: float


class Span(BaseModel):
    start: float
    end: float
    channel: int = 0


class ReadyEvent(BaseModel):
    event: Literal["ready"] = "ready"
    session_id: str
    protocol: str = PROTOCOL_VERSION
    version: str
    config: dict[str, Any]
    config_sources: dict[str, str]
    warnings: list[str] = Field(default_factory=list)
    resumed: bool = False
    received_offset: int = 0  # on resume: send audio from here on
    committed_offset: int = 0


class PartialEvent(BaseModel):
    event: Literal["partial"] = "partial"
    text: str  # the whole uncommitted tail
    words: list[WordOut] = Field(default_factory=list)
    start: float | None = None
    channel: int = 0


class Timing(BaseModel):
    window_sec: float
    queue_ms: float
    inference_ms: float
    batch_ms: float  # window cut -> transcript sent


class TranscriptEvent(BaseModel):
    event: Literal["transcript"] = "transcript"
    segment_id: int
    text: str
    words: list[WordOut]
    start: float
    end: float
    language: str
    channel: int = 0
    behind: bool = Field(
        False,
        description="the pool was slower than real time, so this window was cut longer (batch) "
        "or passes were skipped (stream): the text may differ from a run that kept up",
    )
    timing: Timing


class UtteranceEndEvent(BaseModel):
    event: Literal["utterance_end"] = "utterance_end"
    end: float
    channel: int = 0


class AckEvent(BaseModel):
    event: Literal["ack"] = "ack"
    received_offset: int
    committed_offset: int


class ChannelInsights(BaseModel):
    channel: int
    speaking_sec: float
    word_count: int
    words_per_minute: float | None = None
    silence_ratio: float | None = None


class InsightsEvent(BaseModel):
    """Figures measured by the gateway plus a provider's summary; a provider may add fields."""

    model_config = ConfigDict(extra="allow")

    event: Literal["insights"] = "insights"
    provider: str
    final: bool = False
    error: str | None = None  # the provider failed; the figures are still current
    audio_sec: float | None = None
    speaking_sec: float | None = None  # speech heard by the VAD (all channels)
    word_count: int | None = None
    words_per_minute: float | None = None  # over the transcribed speech; None under 1 s
    silence_ratio: float | None = None  # 1 - speaking_sec / audio_sec
    keywords: list[str] = Field(default_factory=list)
    summary: str | None = None
    language: str | None = None
    channels: list[ChannelInsights] | None = None  # stereo only


class ErrorEvent(BaseModel):
    event: Literal["error"] = "error"
    code: ErrorCode
    message: str
    fatal: bool = False
    span: Span | None = None
    retry_after_sec: float | None = None


class EndEvent(BaseModel):
    event: Literal["end"] = "end"
    session_id: str
    summary: dict[str, Any]


ServerEvent = Annotated[
    ReadyEvent
    | PartialEvent
    | TranscriptEvent
    | UtteranceEndEvent
    | AckEvent
    | InsightsEvent
    | ErrorEvent
    | EndEvent,
    Field(discriminator="event"),
]
server_event = TypeAdapter(ServerEvent)


def finite(value: float) -> float:
    return value if math.isfinite(value) else 0.0
