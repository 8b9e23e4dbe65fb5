"""Any OpenAI-compatible chat completions endpoint (OpenAI, vLLM, Ollama, LiteLLM, ...) writes
the summary and keywords from the transcript. One JSON request per insights event at most
(none while the text is unchanged); the tracker bounds each call with its timeout."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx

from api.insights.base import InsightsInput, ProviderError, ProviderResult
from api.insights.text import clip

LANGUAGE_NAMES = {"pt": "Brazilian Portuguese", "en": "English"}
FENCE = re.compile(r"^```(?:json)?\s*|\s*```$")
MAX_KEYWORD_CHARS = 60

SYSTEM_PROMPT = (
    "You assist a call-centre agent during a live call. From the transcript so far, reply with "
    'only a JSON object: {{"summary": a summary of at most {chars} characters, "keywords": up '
    "to {count} topic keywords}}. Write in {language}. The transcript is machine-made and may "
    "hold errors; do not invent facts."
)


class OpenAIProvider:
    name = "openai"

    def __init__(
        self,
        url: str,
        key: str | None,
        model: str,
        timeout_sec: float,
        max_chars: int,
        max_keywords: int,
        max_transcript_chars: int,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        base = url.rstrip("/")
        self.endpoint = base if base.endswith("/chat/completions") else f"{base}/chat/completions"
        self.model = model
        self.timeout_sec = timeout_sec
        self.max_chars = max_chars
        self.max_keywords = max_keywords
        self.max_transcript_chars = max_transcript_chars
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client = httpx.AsyncClient(timeout=timeout_sec, headers=headers, transport=transport)

    def request_body(self, data: InsightsInput) -> dict[str, Any]:
        language = LANGUAGE_NAMES.get(data.language or "", "the transcript's language")
        system = SYSTEM_PROMPT.format(
            chars=self.max_chars, count=self.max_keywords, language=language
        )
        return {
            "model": self.model,
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": self._transcript(data)},
            ],
            "temperature": 0,
            "max_tokens": max(64, self.max_chars // 2 + 16 * self.max_keywords),
        }

    def _transcript(self, data: InsightsInput) -> str:
        if data.channels > 1 and data.turns:
            text = "\n".join(f"Speaker {channel + 1}: {line}" for channel, line in data.turns)
        else:
            text = data.transcript
        # the latest words matter most in a live call: keep the tail
        return text[-self.max_transcript_chars :]

    async def analyse(self, data: InsightsInput) -> ProviderResult:
        try:
            response = await self._client.post(self.endpoint, json=self.request_body(data))
        except httpx.TimeoutException as exc:
            raise ProviderError(f"openai: timed out after {self.timeout_sec:g} s") from exc
        except httpx.HTTPError as exc:
            raise ProviderError(f"openai: request failed ({type(exc).__name__})") from exc
        if response.status_code != 200:
            raise ProviderError(f"openai: HTTP {response.status_code}")
        try:
            content = response.json()["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise ProviderError("openai: unexpected response") from exc
        if not isinstance(content, str):
            raise ProviderError("openai: unexpected response")
        return self.parse_reply(content)

    def parse_reply(self, content: str) -> ProviderResult:
        """The JSON object asked for; a model that answered in prose gives the summary only."""
        text = FENCE.sub("", content.strip())
        try:
            reply = json.loads(text)
        except ValueError:
            reply = None
        if not isinstance(reply, dict):
            return ProviderResult(summary=clip(text, self.max_chars))
        summary = reply.get("summary")
        keywords = reply.get("keywords")
        if isinstance(keywords, list):
            keywords = [
                k.strip()[:MAX_KEYWORD_CHARS] for k in keywords if isinstance(k, str) and k.strip()
            ][: self.max_keywords]
        else:
            keywords = None
        return ProviderResult(
            summary=clip(summary.strip(), self.max_chars) if isinstance(summary, str) else "",
            keywords=keywords or None,
        )

    async def aclose(self) -> None:
        await self._client.aclose()
