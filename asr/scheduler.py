"""Admission and priority for model calls.

A fixed number of slots run model calls in a thread pool (the event loop never blocks). Waiting
requests are served by priority (final window > partial > file piece), first come first served
within a priority. Past the queue limit the caller gets QueueFull and answers 503, so the
balancer can try another worker. Partials are best effort: they are turned away whenever they
would have to wait, so they never delay a final transcript. `slot()` is the usual way in; the
micro-batcher (asr/batcher.py) uses `reserve()`/`withdraw()`/`release()` directly, because a
request's claim may be dropped when another request's batch takes it along.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import TypeVar

from contracts.worker import Priority

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

    def reserve(self, priority: Priority) -> asyncio.Future[None]:
        """A claim on a slot: done at once when one is free, else when it is handed over.
        Raises QueueFull now (nothing queued) when the request may not wait. Whoever holds a
        granted claim must `release()` it, or `withdraw()` a claim it no longer wants."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._free > 0 and not self.waiting:
            self._free -= 1
            fut.set_result(None)
            return fut
        if priority is Priority.partial:
            raise QueueFull("partial turned away: the worker is busy")
        if self.waiting >= self.queue_limit:
            raise QueueFull(f"queue full ({self.waiting} waiting)")
        heapq.heappush(self._waiters, (int(priority), next(self._order), fut))
        return fut

    def withdraw(self, fut: asyncio.Future[None]) -> None:
        """Give up a claim: leave the queue, or pass on the slot if it was already granted."""
        if not fut.done():
            fut.cancel()  # the queue skips cancelled claims
        elif not fut.cancelled():
            self.release()

    @asynccontextmanager
    async def slot(self, priority: Priority) -> AsyncIterator[None]:
        fut = self.reserve(priority)
        try:
            await fut
        except asyncio.CancelledError:
            self.withdraw(fut)  # we may have been handed a slot as we were cancelled
            raise
        try:
            yield
        finally:
            self.release()

    async def execute(self, fn: Callable[..., T], *args: object) -> T:
        """Run fn on the model threads; call it while holding a slot."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def run(self, priority: Priority, fn: Callable[..., T], *args: object) -> T:
        async with self.slot(priority):
            return await self.execute(fn, *args)

    def release(self) -> None:
        while self._waiters:
            _, _, fut = heapq.heappop(self._waiters)
            if not fut.done():
                fut.set_result(None)  # the slot passes straight to the best waiter
                return
        self._free += 1

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
