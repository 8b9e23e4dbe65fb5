"""A Realtime transcription session's configuration, and how `session.created`/`updated` show
it (the GA shape) or `transcription_session.updated` (the beta one). Updates: session_update.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from contracts.events import Encoding

AudioFormat = Literal["audio/pcm", "audio/pcmu", "audio/pcma"]
PCM_RATE = 24_000  # the one rate OpenAI's API defines for audio/pcm
# the formats OpenAI defines, as the gateway's edge decodes them (encoding, sample rate)
EDGE: dict[str, tuple[Encoding, int]] = {
    "audio/pcm": ("pcm_s16le", PCM_RATE),
    "audio/pcmu": ("mulaw", 8000),
    "audio/pcma": ("alaw", 8000),
}
BETA_FORMATS: dict[str, AudioFormat] = {
    "pcm16": "audio/pcm",
    "g711_ulaw": "audio/pcmu",
    "g711_alaw": "audio/pcma",
}


@dataclass(frozen=True)
class ServerVad:
    threshold: float = 0.5
    prefix_padding_ms: int = 300
    silence_duration_ms: int = 500

    def shown(self) -> dict[str, Any]:
        return {
            "type": "server_vad",
            "threshold": self.threshold,
            "prefix_padding_ms": self.prefix_padding_ms,
            "silence_duration_ms": self.silence_duration_ms,
        }


@dataclass(frozen=True)
class RealtimeConfig:
    model: str  # the served model (any alias a client names runs it)
    format: AudioFormat = "audio/pcm"
    language: str | None = None  # None: detected among the gateway's languages
    prompt: str | None = None
    keywords: tuple[str, ...] = ()  # given to the model as hotwords
    turn_detection: ServerVad | None = field(default_factory=ServerVad)

    @property
    def edge(self) -> tuple[Encoding, int]:
        return EDGE[self.format]

    def ga_session(self, session_id: str) -> dict[str, Any]:
        fmt: dict[str, Any] = {"type": self.format}
        if self.format == "audio/pcm":
            fmt["rate"] = PCM_RATE
        transcription: dict[str, Any] = {
            "model": self.model,
            "language": self.language,
            "prompt": self.prompt,
        }
        if self.keywords:
            transcription["keywords"] = list(self.keywords)
        return {
            "type": "transcription",
            "object": "realtime.transcription_session",
            "id": session_id,
            "audio": {
                "input": {
                    "format": fmt,
                    "transcription": transcription,
                    "turn_detection": self.turn_detection.shown() if self.turn_detection else None,
                    "noise_reduction": None,  # not offered: the audio is used as it comes
                }
            },
            "include": [],
        }

    def beta_session(self, session_id: str) -> dict[str, Any]:
        beta_format = next(k for k, v in BETA_FORMATS.items() if v == self.format)
        return {
            "id": session_id,
            "object": "realtime.transcription_session",
            "input_audio_format": beta_format,
            "input_audio_transcription": {
                "model": self.model,
                "language": self.language,
                "prompt": self.prompt,
            },
            "turn_detection": self.turn_detection.shown() if self.turn_detection else None,
            "input_audio_noise_reduction": None,
            "include": [],
        }
