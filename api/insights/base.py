"""What an insights provider is: the transcript so far in, a summary (and maybe keywords) out.
Speech figures never leave the gateway; only the provider's words come from it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class InsightsInput:
    transcript: str  # the session's final text so far, in order
    language: str | None
    keywords: list[str]  # the local keywords, for a provider that has none of its own
    turns: list[tuple[int, str]] = field(default_factory=list)  # (channel, text) in order
    channels: int = 1
    final: bool = False


@dataclass(frozen=True)
class ProviderResult:
    summary: str
    keywords: list[str] | None = None  # None: keep the local ones
    extra: dict[str, object] = field(default_factory=dict)


class ProviderError(RuntimeError):
    """A provider call failed; the message is safe to send to the client (no keys, no bodies)."""


class InsightsProvider(Protocol):
    name: str

    async def analyse(self, data: InsightsInput) -> ProviderResult: ...

    async def aclose(self) -> None: ...
