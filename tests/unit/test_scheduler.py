"""Priority admission of model calls (pure logic, fake work)."""

from __future__ import annotations

import asyncio

import pytest

from asr.scheduler import PriorityScheduler, QueueFull
from contracts.worker import Priority


async def test_waiters_are_served_by_priority_then_arrival() -> None:
    scheduler = PriorityScheduler(slots=1, queue_limit=10)
    order: list[str] = []
    gate = asyncio.Event()

    async def job(name: str, priority: Priority, hold: bool = False) -> None:
        async with scheduler.slot(priority):
            order.append(name)
            if hold:
                await gate.wait()

    first = asyncio.create_task(job("running", Priority.file, hold=True))
    await asyncio.sleep(0)
    tasks = [
        asyncio.create_task(job(name, prio))
        for name, prio in [
            ("file1", Priority.file),
            ("final1", Priority.final),
            ("file2", Priority.file),
            ("final2", Priority.final),
        ]
    ]
    await asyncio.sleep(0)
    assert scheduler.waiting == 4
    gate.set()
    await asyncio.gather(first, *tasks)
    assert order == ["running", "final1", "final2", "file1", "file2"]
    assert scheduler.running == 0


async def test_queue_limit_and_partials_turned_away() -> None:
    scheduler = PriorityScheduler(slots=1, queue_limit=1)
    gate = asyncio.Event()

    async def hold() -> None:
        async with scheduler.slot(Priority.final):
            await gate.wait()

    running = asyncio.create_task(hold())
    await asyncio.sleep(0)
    with pytest.raises(QueueFull):  # a partial never waits
        async with scheduler.slot(Priority.partial):
            pass
    waiting = asyncio.create_task(hold())
    await asyncio.sleep(0)
    with pytest.raises(QueueFull):  # one waiter is the limit
        async with scheduler.slot(Priority.final):
            pass
    gate.set()
    await asyncio.gather(running, waiting)
    async with scheduler.slot(Priority.partial):  # idle: a partial runs at once
        assert scheduler.running == 1


async def test_cancelled_waiter_gives_its_place_back() -> None:
    scheduler = PriorityScheduler(slots=1, queue_limit=5)
    gate = asyncio.Event()

    async def hold() -> None:
        async with scheduler.slot(Priority.final):
            await gate.wait()

    running = asyncio.create_task(hold())
    await asyncio.sleep(0)
    waiter = asyncio.create_task(hold())
    await asyncio.sleep(0)
    waiter.cancel()
    gate.set()
    await running
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert scheduler.running == 0 and scheduler.waiting == 0


async def test_run_executes_off_the_event_loop() -> None:
    import threading

    scheduler = PriorityScheduler(slots=2, queue_limit=2)
    main = threading.get_ident()
    thread = await scheduler.run(Priority.final, threading.get_ident)
    assert thread != main
    scheduler.shutdown()
