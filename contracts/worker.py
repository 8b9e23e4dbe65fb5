"""Gateway <-> worker: what a transcription request carries and what comes back.

Workers keep no session state, so everything a window needs travels with it, as one multipart
form: the audio (`file`) plus the fields below. This module is the one codec of those fields:
the gateway's pool client encodes them (`to_form`), the worker route decodes them
(`from_form`), and the gateway's OpenAI-compatible file route reads its decoding options with
the same `options_from_form` (OpenAI's `prompt` is `initial_prompt` here).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from enum import IntEnum
from typing import Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, field_validator

from contracts.audio import SAMPLE_RATE
from contracts.languages import LanguageNotAllowed, check_language

MAX_BEAM_SIZE = 20
AudioFormat = Literal["auto", "pcm_s16le"]
Task = Literal["transcribe", "translate"]  # translate: whisper's speech-to-English
SpeechSpans = list[tuple[float, float]]  # (start, end) seconds of speech, in the audio sent


class Priority(IntEnum):
    """Lower runs first: a live window's final pass never waits behind a partial or a file."""

    final = 0
    partial = 1
    file = 2


class DecodeOptions(BaseModel):
    """Decoding options that travel with every request."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    language: str | None = Field(None, description="None: detect among the allowed languages")
    beam_size: int = Field(5, ge=1, le=MAX_BEAM_SIZE)
    best_of: int = Field(1, ge=1, le=MAX_BEAM_SIZE)
    temperature: float | None = Field(
        None, ge=0.0, le=1.0, description="None: faster-whisper's fallback ladder 0.0..1.0"
    )
    initial_prompt: str | None = Field(
        None, max_length=2000, validation_alias=AliasChoices("initial_prompt", "prompt")
    )
    hotwords: str | None = Field(None, max_length=2000)
    prefix: str | None = Field(
        None,
        max_length=2000,
        description="text the audio is known to begin with (words already sent): the decoder "
        "is forced through it instead of generating it again, and only the words after it "
        "come back",
    )
    encoder_pad_sec: float | None = Field(
        None,
        ge=0.0,
        le=30.0,
        description="None: the encoder hears 30 s (faster-whisper's way). A number: the audio "
        "plus this much padding, a timestamp-free decode capped by the audio's length, word "
        "times from the alignment (asr/window_decode.py; live windows)",
    )
    vad_filter: bool = False
    word_timestamps: bool = True
    task: Task = "transcribe"


class WorkerRequest(BaseModel):
    """A request's fields besides the audio."""

    model_config = ConfigDict(extra="forbid")

    options: DecodeOptions = Field(default_factory=DecodeOptions)
    audio_format: AudioFormat = "auto"
    sample_rate: int = Field(SAMPLE_RATE, ge=8000, le=48000)
    priority: Priority = Priority.final
    speech_spans: SpeechSpans | None = Field(
        None,
        description="the gateway's VAD: where the audio holds speech. Absent: the worker runs "
        "its own VAD; empty: there is none, and the model is not called",
    )

    @field_validator("speech_spans")
    @classmethod
    def _ordered(cls, spans: SpeechSpans | None) -> SpeechSpans | None:
        if spans is not None and any(not 0 <= a <= b for a, b in spans):
            raise ValueError("each speech span is [start, end] with 0 <= start <= end")
        return spans


class FormError(ValueError):
    """A form field a request cannot be served with (HTTP 422), naming the field."""

    def __init__(self, message: str, code: str = "invalid_field") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


FORM_FIELDS = ("format", "sample_rate", "priority", "speech_spans", *DecodeOptions.model_fields)


def to_form(
    options: DecodeOptions,
    priority: Priority = Priority.final,
    speech_spans: SpeechSpans | None = None,
    audio_format: AudioFormat = "pcm_s16le",
    sample_rate: int = SAMPLE_RATE,
) -> dict[str, str]:
    """The form fields of a request (the audio goes beside them as `file`)."""
    form = {"format": audio_format, "sample_rate": str(sample_rate), "priority": priority.name}
    for key, value in options.model_dump(exclude_none=True).items():
        form[key] = str(value).lower() if isinstance(value, bool) else str(value)
    if speech_spans is not None:
        form["speech_spans"] = json.dumps([[round(a, 3), round(b, 3)] for a, b in speech_spans])
    return form


def from_form(fields: Mapping[str, str], languages: list[str]) -> WorkerRequest:
    """Decode a worker request's fields; FormError names what is wrong."""
    extra = {
        "audio_format": fields.get("format", "auto"),
        "sample_rate": fields.get("sample_rate", SAMPLE_RATE),
        "priority": _priority(fields.get("priority", "final")),
    }
    if fields.get("speech_spans") is not None:
        try:
            extra["speech_spans"] = json.loads(fields["speech_spans"])
        except ValueError as exc:
            raise FormError("speech_spans: not JSON") from exc
    options = options_from_form(fields, languages)
    try:
        return WorkerRequest(options=options, **extra)
    except ValidationError as exc:
        raise FormError(explain(exc)) from exc


def options_from_form(fields: Mapping[str, str], languages: list[str]) -> DecodeOptions:
    """The decoding options among a form's fields (others are ignored), language checked
    against the allow-list."""
    names = {*DecodeOptions.model_fields, "prompt"}
    values: dict[str, str | None] = {
        key: value for key, value in fields.items() if key in names and value != ""
    }
    try:
        values["language"] = check_language(values.get("language"), languages)
    except LanguageNotAllowed as exc:
        raise FormError(str(exc), "invalid_language") from exc
    try:
        return DecodeOptions.model_validate(values)
    except ValidationError as exc:
        raise FormError(explain(exc)) from exc


def explain(exc: ValidationError) -> str:
    """A validation error in one line: `field: problem; field: problem`."""
    problems = []
    for error in exc.errors()[:5]:
        where = ".".join(str(part) for part in error["loc"] if part != "options")
        problems.append(f"{where or 'request'}: {error['msg']}")
    return "; ".join(problems)


def _priority(name: str) -> Priority:
    try:
        return Priority[name]
    except KeyError:
        raise FormError(
            f"priority: {name!r} is not one of {', '.join(p.name for p in Priority)}"
        ) from None


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
    """Where a request's time went, in the worker. The four stage fields are this request's
    share of its model call's time (a batch's stage times divided equally among its windows):
    `encoder_ms` + `decoder_ms` + `align_ms` is model time (CTranslate2's encode, generate and
    detect_language, align); the rest of `inference_ms`, `features_ms` included, is not."""

    queue_ms: float = Field(0.0, description="arrival to the start of its model call")
    inference_ms: float = Field(0.0, description="its model call, start to end")
    decode_ms: float = Field(0.0, description="reading the form and decoding the audio")
    batch_size: int = Field(1, description="requests that shared this request's model call")
    batch_wait_ms: float = Field(0.0, description="its batch's wait for mates")
    features_ms: float = Field(0.0, description="mel features (its share)")
    encoder_ms: float = Field(0.0, description="CTranslate2 encode (its share)")
    decoder_ms: float = Field(0.0, description="CTranslate2 generate (its share)")
    align_ms: float = Field(0.0, description="CTranslate2 align, word timestamps (its share)")


class TranscriptionResponse(BaseModel):
    text: str
    language: str
    language_probability: float
    duration_sec: float
    speech_sec: float = Field(description="seconds of speech (the spans sent, or the worker's VAD)")
    speech_spans: SpeechSpans = Field(
        default_factory=list, description="(start, end) of each stretch of speech, seconds"
    )
    segments: list[Segment]
    text_tokens: int = Field(0, description="tokens of `text` in the model's tokenizer")
    timing: Timing = Field(default_factory=Timing)


class ReadyResponse(BaseModel):
    status: Literal["ready", "starting"]
    model: str
    device: str
    compute_type: str
    languages: list[str]
    version: str = ""
