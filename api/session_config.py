"""A session's effective configuration, built from its `start` message and the settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from api.batch_config import BatchConfig, parse_batch_config
from api.config import GatewaySettings
from api.insights import provider_names  # `local`; `openai` once ASR_INSIGHTS_OPENAI_URL is set
from contracts.events import StartMessage


@dataclass(frozen=True)
class SessionConfig:
    batch: BatchConfig
    language: str | None
    sample_rate: int
    encoding: str
    channels: int
    hotwords: str | None
    prompt: str | None
    partials: bool
    mode: str
    min_chunk_sec: float | None
    profile: str | None
    enable_insights: bool
    provider: str
    warnings: list[str] = field(default_factory=list)

    def public(self) -> dict[str, Any]:
        """The effective values, under the names used in `start` (for ready.config)."""
        return {
            "batch_window_sec": self.batch.batch_window_sec,
            "max_batch_window_sec": self.batch.max_batch_window_sec,
            "beam_size": self.batch.beam_size,
            "best_of": self.batch.best_of,
            "profile": self.profile,
            "language": self.language,
            "sample_rate": self.sample_rate,
            "encoding": self.encoding,
            "channels": self.channels,
            "partials": self.partials,
            "mode": self.mode,
            "min_chunk_sec": self.min_chunk_sec,
            "enable_insights": self.enable_insights,
            "provider": self.provider,
            "hotwords": self.hotwords,
            "prompt": self.prompt,
        }

    def sources(self) -> dict[str, str]:
        return dict(self.batch.sources)


class ConfigError(ValueError):
    pass


def build_session_config(start: StartMessage, settings: GatewaySettings) -> SessionConfig:
    warnings = [f"unknown field ignored: {name}" for name in start.unknown_fields()]
    if start.language is not None and start.language not in settings.languages:
        raise ConfigError(
            f"language {start.language!r} is not allowed; allowed: {', '.join(settings.languages)}"
        )
    known = provider_names(settings)
    default = settings.insights_provider if settings.insights_provider in known else "local"
    provider = start.provider or default
    if provider not in known:
        warnings.append(f"unknown provider {provider!r}: using {default!r}")
        provider = default
    batch = parse_batch_config(
        batch_window_sec=start.batch_window_sec,
        max_batch_window_sec=start.max_batch_window_sec,
        beam_size=start.beam_size,
        best_of=start.best_of,
        profile=start.profile,
        env_window_sec=settings.batch_window_sec,
    )
    for name in ("batch_window_sec", "max_batch_window_sec"):
        asked = getattr(start, name)
        if asked is not None and asked != getattr(batch, name):
            warnings.append(f"{name} {asked:g} clamped to {getattr(batch, name):g}")
    return SessionConfig(
        batch=batch,
        language=start.language,
        sample_rate=start.sample_rate,
        encoding=start.encoding,
        channels=start.channels,
        hotwords=start.hotwords,
        prompt=start.prompt,
        partials=start.partials,
        mode=start.mode,
        # the effective cadence, so ready.config says what stream mode will do
        min_chunk_sec=(
            (start.min_chunk_sec or settings.stream_min_chunk_sec)
            if start.mode == "stream"
            else start.min_chunk_sec
        ),
        profile=start.profile,
        enable_insights=start.enable_insights,
        provider=provider,
        warnings=warnings,
    )
