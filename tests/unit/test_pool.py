"""The gateway's one retry policy (api/pool.py), against a scripted pool: busy, unreachable and
failing attempts are retried until the deadline, client errors and partials never are."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from api.pool import PoolClient, RetryPolicy, WorkerError
from contracts.worker import DecodeOptions, Priority, TranscriptionResponse

OK = TranscriptionResponse(
    text="olá", language="pt", language_probability=1.0, duration_sec=1.0, speech_sec=1.0,
    segments=[],
).model_dump_json()  # fmt: skip


def pool_answering(*answers: int | Exception, outage_sec: float = 5.0) -> tuple[PoolClient, list]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = answers[min(len(seen), len(answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        body = OK if answer == 200 else '{"detail": "worker busy", "code": "busy"}'
        return httpx.Response(answer, content=body)

    pool = PoolClient("http://pool", outage_sec=outage_sec, transport=httpx.MockTransport(handler))
    fast = {p: RetryPolicy(r.deadline_sec, 0.001, 0.01) for p, r in pool.policies.items()}
    pool.policies = fast
    return pool, seen


PCM = np.zeros(1600, dtype=np.int16)


async def test_busy_and_unreachable_attempts_are_retried() -> None:
    pool, seen = pool_answering(503, httpx.ConnectError("refused"), 502, 200)
    result = await pool.transcribe(PCM, DecodeOptions(language="pt"), Priority.final, [(0, 0.1)])
    assert result.text == "olá" and len(seen) == 4
    fields = seen[0].content.decode(errors="replace")
    assert 'name="speech_spans"' in fields and "[[0, 0.1]]" in fields
    await pool.close()


async def test_retries_end_at_the_deadline() -> None:
    pool, seen = pool_answering(503, outage_sec=0.05)
    with pytest.raises(WorkerError) as error:
        await pool.transcribe(PCM, DecodeOptions(), Priority.final)
    assert error.value.status == 503 and "worker busy" in str(error.value)
    assert 2 <= len(seen) < 60
    await pool.close()


@pytest.mark.parametrize(("status", "priority"), [(422, Priority.final), (503, Priority.partial)])
async def test_client_errors_and_partials_are_not_retried(status: int, priority: Priority) -> None:
    pool, seen = pool_answering(status)
    with pytest.raises(WorkerError) as error:
        await pool.transcribe(PCM, DecodeOptions(), priority)
    assert error.value.status == status and len(seen) == 1
    assert error.value.retryable is (status in (502, 503, 504))
    await pool.close()
