"""Waiting in tests on a condition, never on a guessed delay."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

SETTLE_LIMIT_SEC = 5.0


async def settle(condition: Callable[[], bool], poll_sec: float = 0.001) -> None:
    """Let the event loop run until `condition` holds (TimeoutError after 5 s)."""
    # the conditions are plain state of the code under test, which offers no event to await
    async with asyncio.timeout(SETTLE_LIMIT_SEC):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(poll_sec)
