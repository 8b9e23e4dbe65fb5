"""HTTP client of the worker pool (one worker or the NGINX upstream in front of many).

Requests are idempotent (audio + options in, text out), so a busy (503), unreachable or timed
out attempt is retried, a little later, up to `attempts` times; through NGINX a retry usually
lands on another worker.
"""

from __future__ import annotations

import asyncio

import httpx
import numpy as np

from asr.audio import SAMPLE_RATE
from asr.schemas import DecodeOptions, Priority, TranscriptionResponse

RETRYABLE_STATUS = {502, 503, 504}


class WorkerError(Exception):
    """The pool could not transcribe a request (after retries)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status

    @property
    def retryable(self) -> bool:
        """Unreachable, timed out or busy: another try later may work (a 4xx will not)."""
        return self.status is None or self.status in RETRYABLE_STATUS


class AsrClient:
    def __init__(
        self,
        base_url: str,
        timeout_sec: float = 75.0,
        attempts: int = 3,
        max_connections: int = 200,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.attempts = attempts
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout_sec, connect=5.0),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=50),
        )

    async def close(self) -> None:
        await self._http.aclose()

    async def ready(self) -> bool:
        try:
            return (await self._http.get("/ready", timeout=2.0)).status_code == 200
        except httpx.HTTPError:
            return False

    async def transcribe(
        self, pcm16: np.ndarray, options: DecodeOptions, priority: Priority = Priority.final
    ) -> TranscriptionResponse:
        form = {
            "format": "pcm_s16le",
            "sample_rate": str(SAMPLE_RATE),
            "priority": priority.name,
            **{
                key: str(value).lower() if isinstance(value, bool) else str(value)
                for key, value in options.model_dump(exclude_none=True).items()
            },
        }
        body = pcm16.astype("<i2", copy=False).tobytes()
        last_error = "no attempt made"
        status: int | None = None
        for attempt in range(self.attempts):
            if attempt:
                await asyncio.sleep(min(0.2 * 2 ** (attempt - 1), 2.0))
            try:
                response = await self._http.post(
                    "/transcribe", data=form, files={"file": ("window.pcm", body)}
                )
            except httpx.HTTPError as exc:
                last_error, status = f"{type(exc).__name__}: {exc}".rstrip(": "), None
                continue
            if response.status_code == 200:
                return TranscriptionResponse.model_validate_json(response.content)
            status = response.status_code
            last_error = f"HTTP {status}: {_detail(response)}"
            if status not in RETRYABLE_STATUS:
                break  # a 4xx will not get better by asking again
            if priority is Priority.partial:
                break  # partials are best effort: never retried
        raise WorkerError(last_error, status)


def _detail(response: httpx.Response) -> str:
    try:
        return str(response.json().get("detail", ""))[:300]
    except ValueError:
        return response.text[:300]
