"""Admission and priority for model calls.

A fixed number of slots run model calls in a thread pool (the event loop never blocks). Waiting
requests are served by priority (final window > partial > file piece), first come first served
within a priority. Past the queue limit the caller gets QueueFull and answers 503, so the
balancer can try another worker. Partials are best effort: they are turned away whenever they
would have to wait, so they never delay a final transcript.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import TypeVar

from asr.schemas import Priority

T = TypeVar("T")


class QueueFull(Exception):
    """No slot now and no room to wait (or a partial that would have to wait)."""


class PriorityScheduler:
    def __init__(self, slots: int, queue_limit: int) -> None:
        self.slots = slots
        self.queue_limit = queue_limit
        self._free = slots
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._executor = ThreadPoolExecutor(max_workers=slots, thread_name_prefix="model")

    @property
    def waiting(self) -> int:
        return sum(1 for *_, fut in self._waiters if not fut.done())

    @property
    def running(self) -> int:
        return self.slots - self._free

    @asynccontextmanager
    async def slot(self, priority: Priority) -> AsyncIterator[None]:
        if self._free > 0 and not self.waiting:
            self._free -= 1
        else:
            if priority is Priority.partial:
                raise QueueFull("partial turned away: the worker is busy")
            if self.waiting >= self.queue_limit:
                raise QueueFull(f"queue full ({self.waiting} waiting)")
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            heapq.heappush(self._waiters, (int(priority), next(self._order), fut))
            try:
                await fut
            except asyncio.CancelledError:
                if fut.done() and not fut.cancelled():
                    self._release()  # we were handed a slot as we were cancelled
                raise
        try:
            yield
        finally:
            self._release()

    async def execute(self, fn: Callable[..., T], *args: object) -> T:
        """Run fn on the model threads; call it while holding a slot."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def run(self, priority: Priority, fn: Callable[..., T], *args: object) -> T:
        async with self.slot(priority):
            return await self.execute(fn, *args)

    def _release(self) -> None:
        while self._waiters:
            _, _, fut = heapq.heappop(self._waiters)
            if not fut.done():
                fut.set_result(None)  # the slot passes straight to the best waiter
                return
        self._free += 1

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
