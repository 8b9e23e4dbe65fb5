"""HTTP client of the worker pool (one worker, or the NGINX upstream in front of many), and the
gateway's one retry policy.

Requests are idempotent (audio + options in, text out), so one that finds the pool busy (503),
unreachable, failing (502/504) or too slow (the per-attempt timeout) is tried again, with
backoff, until its deadline: `ASR_WORKER_OUTAGE_SEC` for live windows and file pieces, so a
session rides out a worker restart while its audio waits (up to its buffer limit). Partials are
best effort: one attempt, never retried. A 4xx is never retried.

NGINX's share (nginx/nginx.conf): within one of these attempts it tries a second worker itself
when the first refuses the connection, fails or answers 502/503 within 10 s of the first try
(`proxy_next_upstream_tries 2`), so with several workers one attempt fails only when two
workers did. A worker silent for 60 s (`proxy_read_timeout`) gets a 504 from NGINX, which this
policy retries; the gateway's own per-attempt timeout (75 s) is longer, so NGINX answers
first.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import numpy as np

from contracts.worker import (
    DecodeOptions,
    Priority,
    ReadyResponse,
    SpeechSpans,
    TranscriptionResponse,
    to_form,
)

RETRYABLE_STATUS = {502, 503, 504}


class WorkerError(Exception):
    """The pool could not transcribe a request before its deadline."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status

    @property
    def retryable(self) -> bool:
        """Unreachable, timed out or busy: another try later may work (a 4xx will not)."""
        return self.status is None or self.status in RETRYABLE_STATUS


@dataclass(frozen=True)
class RetryPolicy:
    deadline_sec: float  # from the first attempt; 0: one attempt only
    first_delay_sec: float = 0.25
    max_delay_sec: float = 2.0

    def delays(self) -> Iterator[float]:
        delay = self.first_delay_sec
        while True:
            yield delay
            delay = min(delay * 2, self.max_delay_sec)


class PoolClient:
    def __init__(
        self,
        base_url: str,
        timeout_sec: float = 75.0,
        outage_sec: float = 60.0,
        max_connections: int = 200,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.policies = {
            Priority.final: RetryPolicy(outage_sec),
            Priority.file: RetryPolicy(outage_sec),
            Priority.partial: RetryPolicy(0.0),
        }
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout_sec, connect=5.0),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=50),
            transport=transport,
        )

    async def close(self) -> None:
        await self._http.aclose()

    async def ready(self) -> bool:
        try:
            return (await self._http.get("/ready", timeout=2.0)).status_code == 200
        except httpx.HTTPError:
            return False

    async def worker_info(self) -> ReadyResponse | None:
        """What a ready worker serves (through NGINX: any one worker); None when none answers."""
        try:
            response = await self._http.get("/ready", timeout=2.0)
            if response.status_code != 200:
                return None
            return ReadyResponse.model_validate_json(response.content)
        except (httpx.HTTPError, ValueError):
            return None

    async def transcribe(
        self,
        pcm16: np.ndarray,
        options: DecodeOptions,
        priority: Priority = Priority.final,
        speech_spans: SpeechSpans | None = None,
    ) -> TranscriptionResponse:
        form = to_form(options, priority, speech_spans)
        body = pcm16.astype("<i2", copy=False).tobytes()
        policy = self.policies[priority]
        deadline = time.monotonic() + policy.deadline_sec
        for delay in policy.delays():
            try:
                return await self._attempt(form, body)
            except WorkerError as exc:
                if not exc.retryable or time.monotonic() + delay > deadline:
                    raise
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # delays() never ends

    async def _attempt(self, form: dict[str, str], body: bytes) -> TranscriptionResponse:
        try:
            response = await self._http.post(
                "/transcribe", data=form, files={"file": ("window.pcm", body)}
            )
        except httpx.HTTPError as exc:
            raise WorkerError(f"{type(exc).__name__}: {exc}".rstrip(": ")) from exc
        if response.status_code != 200:
            raise WorkerError(
                f"HTTP {response.status_code}: {_detail(response)}", response.status_code
            )
        return TranscriptionResponse.model_validate_json(response.content)


def _detail(response: httpx.Response) -> str:
    try:
        return str(response.json().get("detail", ""))[:300]
    except ValueError:
        return response.text[:300]
