"""`session.update` (GA shape) and `transcription_session.update` (the beta shape): what an
update may set, checked, applied to a session's RealtimeConfig.

Only the fields present in an update change (OpenAI's rule); `turn_detection: null` turns server
VAD off (the client commits). Format, language, prompt and keywords feed the session pipeline,
so they are fixed once audio has arrived; turn detection may change at any time. Unknown fields
are ignored.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from api.openai.models import resolve, unknown_model_message
from api.openai.realtime_config import (
    BETA_FORMATS,
    EDGE,
    PCM_RATE,
    AudioFormat,
    RealtimeConfig,
    ServerVad,
)

MAX_PROMPT_CHARS = 1000  # the session pipeline's limit (contracts.events.StartMessage)
LOCKED = ("format", "language", "prompt", "keywords")  # fixed once audio has arrived


class ConfigProblem(ValueError):
    def __init__(self, message: str, param: str, code: str = "invalid_value") -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code


class _In(BaseModel):
    model_config = ConfigDict(extra="ignore")


class FormatIn(_In):
    type: str
    rate: int | None = None


class TranscriptionIn(_In):
    model: str | None = None
    language: str | None = None
    prompt: str | None = None
    keywords: list[str] | None = Field(None, max_length=100)


class TurnDetectionIn(_In):
    type: Literal["server_vad", "semantic_vad"]
    threshold: float | None = Field(None, ge=0.0, le=1.0)
    prefix_padding_ms: int | None = Field(None, ge=0, le=10_000)
    silence_duration_ms: int | None = Field(None, ge=0, le=10_000)


class InputIn(_In):
    format: FormatIn | None = None
    transcription: TranscriptionIn | None = None
    turn_detection: TurnDetectionIn | None = None


class AudioIn(_In):
    input: InputIn | None = None


class SessionIn(_In):
    type: str | None = None
    audio: AudioIn | None = None


class BetaSessionIn(_In):
    input_audio_format: str | None = None
    input_audio_transcription: TranscriptionIn | None = None
    turn_detection: TurnDetectionIn | None = None


def apply_update(
    config: RealtimeConfig,
    session: Any,
    beta: bool,
    languages: list[str],
    audio_started: bool,
) -> RealtimeConfig:
    """The configuration after one update; ConfigProblem names the first field at fault (the
    update is then not applied at all)."""
    root = "session"
    if not isinstance(session, dict):
        raise ConfigProblem("session: an object is required", root, "missing_required_parameter")
    try:
        if beta:
            parsed = BetaSessionIn.model_validate(session)
            fmt = _beta_format(parsed.input_audio_format)
            transcription, turn, turn_set = (
                parsed.input_audio_transcription,
                parsed.turn_detection,
                "turn_detection" in parsed.model_fields_set,
            )
            prefix = root
        else:
            ga = SessionIn.model_validate(session)
            if ga.type not in (None, "transcription"):
                raise ConfigProblem(
                    f"session.type: {ga.type!r} sessions are not served here, only "
                    "'transcription' (connect with ?intent=transcription)",
                    "session.type",
                )
            given = ga.audio.input if ga.audio and ga.audio.input else InputIn()
            fmt = _ga_format(given.format) if given.format else None
            transcription, turn = given.transcription, given.turn_detection
            turn_set = "turn_detection" in given.model_fields_set
            prefix = "session.audio.input"
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigProblem(f"session.{where}: {first['msg']}", f"session.{where}") from exc
    updated = config
    if fmt is not None:
        updated = replace(updated, format=fmt)
    if transcription is not None:
        updated = _transcription(updated, transcription, languages, prefix)
    if turn_set:
        updated = replace(updated, turn_detection=_turn(turn, config.turn_detection, prefix))
    if audio_started:
        for name in LOCKED:
            if getattr(updated, name) != getattr(config, name):
                raise ConfigProblem(
                    f"{name} cannot change once audio has been appended (it is "
                    f"{getattr(config, name)!r}); open a new session for another",
                    f"{prefix}.{name}",
                    "session_locked",
                )
    return updated


def _ga_format(given: FormatIn) -> AudioFormat:
    param = "session.audio.input.format"
    if given.type not in EDGE:
        raise ConfigProblem(
            f"{param}.type: {given.type!r} is not one of {', '.join(EDGE)}", f"{param}.type"
        )
    if given.type == "audio/pcm" and given.rate not in (None, PCM_RATE):
        raise ConfigProblem(
            f"{param}.rate: audio/pcm is {PCM_RATE} Hz (OpenAI's API defines no other rate)",
            f"{param}.rate",
        )
    return given.type  # type: ignore[return-value]  # in EDGE: one of the AudioFormat literals


def _beta_format(name: str | None) -> AudioFormat | None:
    if name is None:
        return None
    if name not in BETA_FORMATS:
        raise ConfigProblem(
            f"session.input_audio_format: {name!r} is not one of {', '.join(BETA_FORMATS)}",
            "session.input_audio_format",
        )
    return BETA_FORMATS[name]


def _transcription(
    config: RealtimeConfig, given: TranscriptionIn, languages: list[str], prefix: str
) -> RealtimeConfig:
    where = (
        f"{prefix}.transcription" if prefix != "session" else "session.input_audio_transcription"
    )
    if resolve(given.model, config.model) is None:
        assert given.model is not None
        raise ConfigProblem(
            unknown_model_message(given.model, config.model), f"{where}.model", "model_not_found"
        )
    language = (given.language or "").strip().lower() or None
    if language == "auto":
        language = None
    if language is not None and language not in languages:
        raise ConfigProblem(
            f"{where}.language: {language!r} is not served here; allowed: {', '.join(languages)}",
            f"{where}.language",
        )
    if given.prompt is not None and len(given.prompt) > MAX_PROMPT_CHARS:
        raise ConfigProblem(
            f"{where}.prompt: at most {MAX_PROMPT_CHARS} characters", f"{where}.prompt"
        )
    keywords = tuple(k.strip() for k in given.keywords or () if k.strip())
    if len(" ".join(keywords)) > MAX_PROMPT_CHARS:
        raise ConfigProblem(
            f"{where}.keywords: at most {MAX_PROMPT_CHARS} characters in all", f"{where}.keywords"
        )
    return replace(config, language=language, prompt=given.prompt or None, keywords=keywords)


def _turn(
    given: TurnDetectionIn | None, current: ServerVad | None, prefix: str
) -> ServerVad | None:
    if given is None:
        return None  # null: the client commits
    if given.type == "semantic_vad":
        raise ConfigProblem(
            "turn_detection: semantic_vad is not offered here; use server_vad or null",
            f"{prefix}.turn_detection.type",
        )
    base = current or ServerVad()
    values = given.model_dump(exclude_none=True, exclude={"type"})
    return replace(base, **values)
