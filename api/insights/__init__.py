"""Live insights for a session (`enable_insights`): figures from the gateway's own VAD and
transcripts, a summary from a provider (`local`, or `openai` when configured)."""

from __future__ import annotations

from api.config import GatewaySettings
from api.insights.base import InsightsInput, InsightsProvider, ProviderError, ProviderResult
from api.insights.local import LocalProvider
from api.insights.openai import OpenAIProvider
from api.insights.tracker import Emit, InsightsTracker, LanguageOf

__all__ = [
    "InsightsInput",
    "InsightsProvider",
    "InsightsTracker",
    "ProviderError",
    "ProviderResult",
    "make_provider",
    "make_tracker",
    "provider_names",
]


def provider_names(settings: GatewaySettings) -> tuple[str, ...]:
    """Providers a client may name: `openai` only once its URL is configured."""
    return ("local", "openai") if settings.insights_openai_url else ("local",)


def make_provider(name: str, settings: GatewaySettings) -> InsightsProvider:
    if name == "openai" and settings.insights_openai_url:
        key = settings.insights_openai_key
        return OpenAIProvider(
            url=settings.insights_openai_url,
            key=key.get_secret_value() if key else None,
            model=settings.insights_openai_model,
            timeout_sec=settings.insights_timeout_sec,
            max_chars=settings.insights_summary_max_chars,
            max_keywords=settings.insights_max_keywords,
            max_transcript_chars=settings.insights_openai_max_chars,
        )
    return LocalProvider(settings.insights_summary_max_chars)


def make_tracker(
    session_id: str,
    channels: int,
    provider: str,
    settings: GatewaySettings,
    emit: Emit,
    language: LanguageOf,
    timeline_offset: int = 0,
    audio_start: int | None = None,
) -> InsightsTracker:
    return InsightsTracker(
        session_id,
        channels,
        make_provider(provider, settings),
        emit,
        language,
        interval_sec=settings.insights_interval_sec,
        timeout_sec=settings.insights_timeout_sec,
        max_keywords=settings.insights_max_keywords,
        timeline_offset=timeline_offset,
        audio_start=audio_start,
    )
