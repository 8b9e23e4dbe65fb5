"""Micro-batching across sessions: requests with compatible options share one model call.

Every request claims a scheduler slot at its own priority (so finals still go first, the queue
limit and 503s work as before). The claim that is granted first leads a batch: it takes the
pending requests of its group (same key: options and priority), oldest first, up to
`max_batch`, withdraws their claims and runs them in one call. While the worker is busy,
requests pile up behind the running call and the next leader takes them all: no deliberate
wait is needed. A request that finds the worker idle is dispatched at once, unless requests
are arriving together (the previous one came less than `wait_sec` before it); then the leader
holds its slot up to `wait_sec` (from its arrival) for batch mates.

A batch that raises is retried one request at a time, so a bad input fails alone; per-request
errors returned by the batch function fail only their own request.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from asr.scheduler import PriorityScheduler
from contracts.worker import Priority

P = TypeVar("P")  # what a request carries
R = TypeVar("R")  # what it gets back

BatchFn = Callable[[list[P]], Sequence[R | Exception]]  # runs on the model threads


@dataclass(frozen=True)
class Done(Generic[R]):
    result: R
    queue_sec: float  # arrival to the start of its model call
    batch_size: int
    wait_sec: float  # how long its batch's leader held the slot waiting for mates


@dataclass(eq=False)
class _Pending(Generic[P, R]):
    key: Hashable
    payload: P
    arrived: float
    gap_sec: float  # since the request before it arrived
    order: int
    future: asyncio.Future[Done[R]]
    ticket: asyncio.Future[None] | None = None


class MicroBatcher(Generic[P, R]):
    def __init__(
        self,
        scheduler: PriorityScheduler,
        run_batch: BatchFn[P, R],
        max_batch: int,
        wait_sec: float,
        on_batch: Callable[[int, float], None] | None = None,
    ) -> None:
        self.scheduler = scheduler
        self.run_batch = run_batch
        self.max_batch = max_batch
        self.wait_sec = wait_sec
        self.on_batch = on_batch  # (batch size, wait seconds) per batch: metrics
        self._pending: list[_Pending[P, R]] = []
        self._order = itertools.count()
        self._last_arrival = float("-inf")
        self._arrived = asyncio.Event()
        self._running: set[asyncio.Task[None]] = set()

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def submit(self, key: Hashable, priority: Priority, payload: P) -> Done[R]:
        loop = asyncio.get_running_loop()
        now = time.perf_counter()
        entry: _Pending[P, R] = _Pending(
            key, payload, now, now - self._last_arrival, next(self._order), loop.create_future()
        )
        entry.ticket = self.scheduler.reserve(priority)  # QueueFull: nothing queued
        self._last_arrival = now
        self._pending.append(entry)
        self._arrived.set()
        try:
            while not entry.future.done():
                ticket = entry.ticket
                if ticket is None:  # taken into a batch: its result will come
                    return await entry.future
                either: set[asyncio.Future[Any]] = {entry.future, ticket}
                await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
                # the slot is ours only if no leader took us meanwhile: a leader that takes a
                # request whose claim was just granted hands that slot on (withdraw) and clears
                # entry.ticket; leading then would release a slot a second time
                if (
                    entry.ticket is ticket
                    and ticket.done()
                    and not ticket.cancelled()
                    and not entry.future.done()
                ):
                    entry.ticket = None  # the slot is ours: lead a batch
                    await self._lead(entry)
            return entry.future.result()
        finally:
            if entry.ticket is not None:
                self.scheduler.withdraw(entry.ticket)
                entry.ticket = None
            if entry in self._pending:
                self._pending.remove(entry)

    async def _lead(self, leader: _Pending[P, R]) -> None:
        """Holding a slot: gather mates (maybe wait a little), then run them in the background
        (a cancelled leader must not take its mates down with it)."""
        waited = 0.0
        try:
            if leader.gap_sec < self.wait_sec:
                started = time.perf_counter()
                await self._wait_for_mates(leader)
                waited = time.perf_counter() - started
        except BaseException:
            self.scheduler.release()
            raise
        if leader not in self._pending:  # another slot's batch took it while we waited
            self.scheduler.release()
            return
        batch = self._take(leader)
        if self.on_batch is not None:
            self.on_batch(len(batch), waited)
        task = asyncio.create_task(self._run(batch, waited))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _wait_for_mates(self, leader: _Pending[P, R]) -> None:
        deadline = leader.arrived + self.wait_sec
        while len(self._group(leader)) < self.max_batch:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                return
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), remaining)

    def _group(self, leader: _Pending[P, R]) -> list[_Pending[P, R]]:
        return [e for e in self._pending if e.key == leader.key]

    def _take(self, leader: _Pending[P, R]) -> list[_Pending[P, R]]:
        mates = sorted((e for e in self._group(leader) if e is not leader), key=lambda e: e.order)
        batch = [leader, *mates[: self.max_batch - 1]]
        for entry in batch:
            self._pending.remove(entry)
            if entry.ticket is not None:  # its own claim is not needed any more
                self.scheduler.withdraw(entry.ticket)
                entry.ticket = None
        return batch

    async def _run(self, batch: list[_Pending[P, R]], waited: float) -> None:
        began = time.perf_counter()
        try:
            results = await self.scheduler.execute(self._call, [e.payload for e in batch])
        except BaseException as exc:  # the executor itself failed (shutdown)
            results = [exc if isinstance(exc, Exception) else RuntimeError(str(exc))] * len(batch)
        finally:
            self.scheduler.release()
        for entry, result in zip(batch, results, strict=True):
            if entry.future.done():  # its caller went away
                continue
            if isinstance(result, Exception):
                entry.future.set_exception(result)
            else:
                entry.future.set_result(Done(result, began - entry.arrived, len(batch), waited))

    def _call(self, payloads: list[P]) -> list[R | Exception]:
        """On a model thread: the batch, or one by one when the batch as a whole fails."""
        try:
            results = list(self.run_batch(payloads))
            if len(results) != len(payloads):
                raise RuntimeError(f"{len(results)} results for {len(payloads)} requests")
            return results
        except Exception as exc:
            if len(payloads) == 1:
                return [exc]
        return [self._one(payload) for payload in payloads]

    def _one(self, payload: P) -> R | Exception:
        try:
            return self.run_batch([payload])[0]
        except Exception as exc:
            return exc
