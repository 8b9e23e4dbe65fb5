"""Gateway settings: one pydantic-settings class, env prefix ASR_ (as in the reference)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from contracts.languages import parse_language_list

REPO_ROOT = Path(__file__).resolve().parent.parent


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ASR_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    upstream_url: str = Field(
        "http://127.0.0.1:8001", description="one worker, or the NGINX upstream in front of many"
    )
    batch_window_sec: float | None = Field(
        None, description="default window when a client sends none (a client value wins)"
    )
    languages: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["pt", "en"])
    pause_search_sec: float = Field(0.5, ge=0.0, le=5.0)
    pause_min_ms: int = Field(150, ge=30, le=2000)
    context_sec: float = Field(
        5.0, ge=0.0, le=20.0, description="audio before each window sent along as context"
    )
    language_lock_speech_sec: float = Field(
        1.0, ge=0.0, description="speech a window needs before its detected language is kept"
    )
    batch_hold_back: Literal["cut", "speech"] = Field(
        "speech",
        description="batch mode, a window's last word goes again with the next window whenever "
        "speech follows it before the cut (speech), or only when it touches the cut (cut); "
        "measured in docs/benchmarks.md",
    )
    batch_empty_window: Literal["alone", "carry"] = Field(
        "carry",
        description="batch mode, a window whose answer holds no new words though it has speech "
        "after what was sent: carry it into the next window (once, then alone), or ask for its "
        "new audio alone",
    )
    window_encoder_pad_sec: float | None = Field(
        3.0,
        ge=0.0,
        le=30.0,
        description="batch windows are encoded on their own length plus this much padding "
        "instead of 30 s (the worker's asr/window_decode.py); unset: 30 s",
    )
    decoder_prefix: bool = Field(
        True,
        description="the words already sent that a window's context holds are the decoder's "
        "forced prefix: the worker does not generate them again and returns only new words",
    )
    # partial results, streaming mode, endpointing
    partial_interval_ms: int = Field(500, ge=100, le=5000)
    partial_max_sec: float = Field(15.0, gt=0, description="longest tail a partial covers")
    utterance_end_ms: int = Field(1000, ge=200, le=10000)
    vad_enabled: bool = True
    vad_threshold: float = Field(0.5, gt=0.0, lt=1.0)
    vad_model_path: Path | None = Field(
        None, description="Silero v6 ONNX file; unset: the one faster-whisper's wheel ships"
    )
    stream_min_chunk_sec: float = Field(
        0.9, ge=0.2, le=5.0, description="stream mode: new audio between passes"
    )
    stream_buffer_max_sec: float = Field(
        8.0, ge=4.0, le=28.0, description="measured: 8 s gives p95 5.0 s final latency, 15 s 11 s"
    )
    stream_context_sec: float = Field(
        3.0,
        ge=0.0,
        le=20.0,
        description="stream mode with decoder_prefix: committed audio heard again before the "
        "uncommitted part in every pass",
    )
    stream_encoder_pad_sec: float | None = Field(
        6.0,
        ge=0.0,
        le=30.0,
        description="stream passes are encoded on their own length plus this much padding "
        "(batch windows take window_encoder_pad_sec); unset: 30 s. Replay on the benchmark's "
        "clips and the long-form material, docs/benchmarks.md: 6 s beat 3 s on both",
    )
    stream_lookahead_sec: float = Field(
        0.0,
        ge=0.0,
        le=10.0,
        description="stream mode: a word with this much audio after it is final (0: never)",
    )
    stream_commit_pause_ms: int = Field(
        300, ge=100, le=5000, description="stream mode: a pause this long commits what precedes"
    )
    stream_prompt: bool = Field(
        False, description="committed text before the buffer as the prompt in stream mode"
    )
    # security
    auth_required: bool = Field(False, description="refuse requests without a valid API key")
    api_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="SHA-256 hex digests of accepted keys, optionally 'name:digest'",
    )
    api_keys_file: Path | None = Field(None, description="one 'name:digest' or digest per line")
    allowed_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="WebSocket Origin allow-list; empty: any origin"
    )
    # limits
    max_sessions: int = Field(500, ge=1)
    max_sessions_per_key: int = Field(100, ge=1)
    max_session_sec: float = Field(4 * 3600.0, gt=0)
    idle_timeout_sec: float = Field(60.0, gt=0, description="no audio for this long ends it")
    max_buffered_sec: float = Field(
        30.0, ge=1.0, description="audio waiting per session before the socket is not read"
    )
    max_outbox_events: int = Field(
        2000, ge=10, description="unsent events before a slow client is closed"
    )
    worker_outage_sec: float = Field(
        60.0,
        ge=0.0,
        description="the retry deadline: how long a window or file piece is retried while the "
        "pool is busy or unreachable (api/pool.py)",
    )
    # resume
    resume_grace_sec: float = Field(30.0, ge=0.0, description="a dropped session waits this long")
    transcript_ttl_sec: float = Field(600.0, ge=0.0, description="finished transcripts kept")
    shutdown_timeout_sec: float = Field(20.0, ge=0.0)
    disconnect_grace_sec: float = Field(0.0, ge=0.0)
    max_frame_bytes: int = Field(1024 * 1024, ge=1024)
    ack_interval_sec: float = Field(1.0, gt=0.0)
    # file transcription
    file_concurrency: int = Field(4, ge=1, description="file pieces in flight, all requests")
    file_piece_max_sec: float = Field(30.0, ge=5.0, le=30.0)
    file_max_bytes: int = Field(200 * 1024 * 1024, ge=1024)
    file_max_sec: float = Field(4 * 3600.0, gt=0)
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # the worker pool
    request_timeout_sec: float = Field(
        75.0, gt=0, description="per attempt; longer than NGINX's proxy_read_timeout (60 s)"
    )
    frontend_dir: Path = REPO_ROOT / "frontend"
    log_level: str = "INFO"
    # live insights (enable_insights): stats stay local, a provider writes the summary
    insights_interval_sec: float = Field(5.0, ge=0.5, le=60.0, description="between events")
    insights_provider: str = Field("local", description="used when a client names none")
    insights_timeout_sec: float = Field(
        10.0,
        gt=0.0,
        le=120.0,
        description="per provider call; the final one delays `end` at most this",
    )
    insights_max_keywords: int = Field(8, ge=1, le=50)
    insights_summary_max_chars: int = Field(300, ge=40, le=4000)
    insights_openai_url: str | None = Field(
        None, description="OpenAI-compatible base URL ending in /v1; unset: no `openai` provider"
    )
    insights_openai_key: SecretStr | None = None
    insights_openai_model: str = "gpt-4o-mini"
    insights_openai_max_chars: int = Field(
        12000, ge=500, description="transcript tail sent to the provider"
    )

    @field_validator("languages", mode="before")
    @classmethod
    def _split_languages(cls, value: object) -> list[str]:
        return parse_language_list(value)

    @field_validator("cors_origins", "api_keys", "allowed_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> list[str]:  # raw input: a string or a list
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return list(value)
