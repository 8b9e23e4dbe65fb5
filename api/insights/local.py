"""The default provider: an extractive summary of the session's own words; no network."""

from __future__ import annotations

import asyncio
from collections import Counter

from api.insights.base import InsightsInput, ProviderResult
from api.insights.text import KeywordCounter, summarize


class LocalProvider:
    name = "local"

    def __init__(self, max_chars: int) -> None:
        self.max_chars = max_chars

    async def analyse(self, data: InsightsInput) -> ProviderResult:
        # a thread: a long session's text takes a few ms to score, the event loop never waits
        summary = await asyncio.to_thread(
            local_summary, data.transcript, data.language, self.max_chars
        )
        return ProviderResult(summary=summary)

    async def aclose(self) -> None:
        return None


def local_summary(transcript: str, language: str | None, max_chars: int) -> str:
    """Also what the tests recompute from a session's transcript to check determinism."""
    counter = KeywordCounter()
    counter.add(transcript)
    counts: Counter[str] = counter.counts
    return summarize(transcript, counts, language, max_chars)
