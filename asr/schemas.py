"""Gateway <-> worker contract. Pure pydantic: importable without faster-whisper."""

from __future__ import annotations

from enum import IntEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_BEAM_SIZE = 20
AudioFormat = Literal["auto", "pcm_s16le"]


class Priority(IntEnum):
    """Lower runs first: a live window's final pass never waits behind a partial or a file."""

    final = 0
    partial = 1
    file = 2


class DecodeOptions(BaseModel):
    """Decoding options that travel with every request (workers keep no session state)."""

    model_config = ConfigDict(extra="forbid")

    language: str | None = Field(None, description="None: detect among the allowed languages")
    beam_size: int = Field(5, ge=1, le=MAX_BEAM_SIZE)
    best_of: int = Field(1, ge=1, le=MAX_BEAM_SIZE)
    temperature: float | None = Field(
        None, ge=0.0, le=1.0, description="None: faster-whisper's fallback ladder 0.0..1.0"
    )
    initial_prompt: str | None = Field(None, max_length=2000)
    hotwords: str | None = Field(None, max_length=2000)
    vad_filter: bool = False
    word_timestamps: bool = True


class Word(BaseModel):
    word: str
    start: float
    end: float
    probability: float


class Segment(BaseModel):
    id: int
    start: float
    end: float
    text: str
    avg_logprob: float
    no_speech_prob: float
    words: list[Word] = Field(default_factory=list)


class Timing(BaseModel):
    queue_ms: float = 0.0
    inference_ms: float = 0.0
    decode_ms: float = 0.0
    batch_size: int = Field(1, description="requests that shared this request's model call")
    batch_wait_ms: float = Field(0.0, description="its batch's wait for mates")


class TranscriptionResponse(BaseModel):
    text: str
    language: str
    language_probability: float
    duration_sec: float
    speech_sec: float = Field(description="seconds the VAD judged to be speech")
    speech_spans: list[tuple[float, float]] = Field(
        default_factory=list, description="(start, end) of each stretch of speech, seconds"
    )
    segments: list[Segment]
    timing: Timing = Field(default_factory=Timing)


class ErrorResponse(BaseModel):
    detail: str
    code: str = "error"


class ReadyResponse(BaseModel):
    status: Literal["ready", "starting"]
    model: str
    device: str
    compute_type: str
    languages: list[str]
    version: str = ""
