"""Grouping and dispatch of the worker's micro-batcher, and the packing layout (pure logic,
fake model calls on the scheduler's threads)."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

import asr.batcher
from asr.batch_decode import RawSegment, RawWord, coverage
from asr.batcher import MicroBatcher
from asr.direct_pass import ItemPlan, plan_pass
from asr.scheduler import PriorityScheduler, QueueFull
from asr.service import MAX_BATCHED_SAMPLES, batch_key
from contracts.worker import DecodeOptions, Priority
from tests.async_utils import settle

pytestmark = pytest.mark.timeout(30)


class FakeModel:
    """Records every call; `hold` keeps a call running until released; 'bad' payloads make
    the whole call raise, 'err' payloads fail alone."""

    def __init__(self, seconds: float = 0.0) -> None:
        self.calls: list[list[str]] = []
        self.seconds = seconds
        self.hold = threading.Event()
        self.hold.set()
        self.started = threading.Event()
        self.lock = threading.Lock()
        self.running = 0
        self.peak = 0  # most calls at once: never more than the scheduler's slots

    def __call__(self, payloads: list[str]) -> list[str | Exception]:
        with self.lock:
            self.calls.append(list(payloads))
            self.running += 1
            self.peak = max(self.peak, self.running)
        self.started.set()
        try:
            self.hold.wait(5)
            time.sleep(self.seconds)
            if "bad" in payloads:
                raise RuntimeError("the joint call failed")
            return [ValueError(p) if p == "err" else p.upper() for p in payloads]
        finally:
            with self.lock:
                self.running -= 1


class FakeClock:
    """`perf_counter` for asr.batcher: time moves only when a test moves it."""

    def __init__(self) -> None:
        self.now = 100.0

    def perf_counter(self) -> float:
        return self.now


def make(
    model: FakeModel, slots: int = 1, max_batch: int = 8, wait_sec: float = 0.0, limit: int = 16
) -> tuple[MicroBatcher[str, str], list[tuple[int, float]]]:
    seen: list[tuple[int, float]] = []
    batcher = MicroBatcher(
        PriorityScheduler(slots, limit),
        model,
        max_batch,
        wait_sec,
        on_batch=lambda n, w: seen.append((n, w)),
    )
    return batcher, seen


async def busy_then(batcher: MicroBatcher[str, str], model: FakeModel) -> asyncio.Task:
    """Occupy the only slot with a held call, so later requests queue up."""
    model.hold.clear()
    first = asyncio.create_task(batcher.submit("x", Priority.final, "first"))
    assert await asyncio.to_thread(model.started.wait, 5)
    return first


async def test_idle_worker_dispatches_a_lone_request_at_once() -> None:
    model = FakeModel()
    batcher, seen = make(model, wait_sec=1.0)  # a long wait that must not be paid
    started = time.perf_counter()
    done = await batcher.submit("k", Priority.final, "a")
    assert time.perf_counter() - started < 0.5
    assert (done.result, done.batch_size, done.wait_sec) == ("A", 1, 0.0)
    assert seen == [(1, 0.0)]


async def test_requests_queued_behind_a_call_share_the_next_one() -> None:
    model = FakeModel()
    batcher, seen = make(model)
    first = await busy_then(batcher, model)
    later = [asyncio.create_task(batcher.submit("k", Priority.final, p)) for p in "abcd"]
    await settle(lambda: batcher.pending == 4)
    model.hold.set()
    done = await asyncio.gather(first, *later)
    assert [d.result for d in done] == ["FIRST", "A", "B", "C", "D"]
    assert model.calls == [["first"], ["a", "b", "c", "d"]]
    assert [d.batch_size for d in done] == [1, 4, 4, 4, 4]
    assert [n for n, _ in seen] == [1, 4]
    assert batcher.scheduler.running == 0 and batcher.pending == 0


async def test_two_slots_batch_sizes_follow_the_load_up_to_max_batch() -> None:
    """The GPU layout (two calls at once): while both slots are busy, what piles up is taken
    in calls of at most max_batch; a lone request on an idle slot goes at once, alone."""
    model = FakeModel()
    batcher, seen = make(model, slots=2, max_batch=8, limit=32)
    model.hold.clear()
    # two calls of another key take both slots (a key of their own: not batch mates)
    busy = [asyncio.create_task(batcher.submit(f"b{i}", Priority.final, f"b{i}")) for i in (1, 2)]
    await settle(lambda: batcher.scheduler.running == 2 and len(model.calls) == 2)
    queued = [asyncio.create_task(batcher.submit("k", Priority.final, f"q{i}")) for i in range(20)]
    await settle(lambda: batcher.pending == 20)
    model.hold.set()
    done = await asyncio.gather(*busy, *queued)
    assert [len(call) for call in model.calls] == [1, 1, 8, 8, 4]
    assert sorted(d.batch_size for d in done[2:]) == [4] * 4 + [8] * 16
    assert [n for n, _ in seen] == [1, 1, 8, 8, 4]
    # the slots stay two: requests taken into a batch just as their claim was granted hand
    # that slot on once (the bug this caught: each released it again, -10 slots "running")
    assert model.peak == 2 and batcher.scheduler.running == 0
    lone = await batcher.submit("k", Priority.final, "lone")  # idle again: no waiting
    assert lone.batch_size == 1 and batcher.scheduler.running == 0 and model.peak == 2


async def test_groups_by_key_and_respects_max_batch() -> None:
    model = FakeModel()
    batcher, _ = make(model, max_batch=2)
    first = await busy_then(batcher, model)
    jobs = [
        asyncio.create_task(batcher.submit(key, Priority.final, payload))
        for key, payload in [("en", "e1"), ("pt", "p1"), ("en", "e2"), ("en", "e3"), ("pt", "p2")]
    ]
    await settle(lambda: batcher.pending == 5)
    model.hold.set()
    results = await asyncio.gather(first, *jobs)
    assert [d.result for d in results[1:]] == ["E1", "P1", "E2", "E3", "P2"]
    # oldest group first, at most two per call, never two keys in one call
    assert model.calls == [["first"], ["e1", "e2"], ["p1", "p2"], ["e3"]]


async def test_finals_go_before_file_pieces() -> None:
    model = FakeModel()
    batcher, _ = make(model)
    first = await busy_then(batcher, model)
    jobs = [
        asyncio.create_task(batcher.submit(f"{prio.name}", prio, name))
        for prio, name in [
            (Priority.file, "f1"),
            (Priority.final, "w1"),
            (Priority.file, "f2"),
            (Priority.final, "w2"),
        ]
    ]
    await settle(lambda: batcher.pending == 4)
    model.hold.set()
    await asyncio.gather(first, *jobs)
    assert model.calls == [["first"], ["w1", "w2"], ["f1", "f2"]]


async def test_a_failing_input_fails_alone() -> None:
    model = FakeModel()
    batcher, _ = make(model)
    first = await busy_then(batcher, model)
    jobs = [
        asyncio.create_task(batcher.submit("k", Priority.final, p))
        for p in ["a", "bad", "err", "b"]
    ]
    await settle(lambda: batcher.pending == 4)
    model.hold.set()
    results = await asyncio.gather(first, *jobs, return_exceptions=True)
    assert results[1].result == "A" and results[4].result == "B"
    assert isinstance(results[2], RuntimeError)  # the joint call's culprit, found alone
    assert isinstance(results[3], ValueError)  # a per-request error stays its own
    # the joint call raised, so each request was retried on its own
    assert model.calls[1] == ["a", "bad", "err", "b"]
    assert sorted(map(tuple, model.calls[2:])) == [("a",), ("b",), ("bad",), ("err",)]
    assert batcher.scheduler.running == 0


async def test_requests_arriving_together_wait_briefly_for_mates(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On the batcher's own clock (a fake one here, moved by the test): a request that finds
    the worker idle with nothing arriving goes at once; one that arrives 10 ms after another
    holds its slot until `wait_sec` after its arrival, and takes the mate that came meanwhile."""
    clock = FakeClock()
    monkeypatch.setattr(asr.batcher, "time", clock)
    model = FakeModel()
    model.hold.clear()
    batcher, seen = make(model, slots=2, wait_sec=0.2)
    lone = asyncio.create_task(batcher.submit("k", Priority.final, "lone"))
    await settle(model.started.is_set)  # nothing was arriving: no wait
    clock.now += 0.01
    lead = asyncio.create_task(batcher.submit("k", Priority.final, "lead"))  # a burst
    # the lead holds the second slot, waiting for mates (it cleared the arrival signal)
    await settle(lambda: batcher.pending == 1 and not batcher._arrived.is_set())
    clock.now += 0.03
    mate = asyncio.create_task(batcher.submit("k", Priority.final, "mate"))
    await settle(lambda: batcher.pending == 2)
    clock.now += 0.2  # past the lead's deadline: 0.21 s after its arrival
    await settle(lambda: batcher.pending == 0)  # the lead took its mate
    model.hold.set()
    done = await asyncio.gather(lone, lead, mate)
    assert model.calls == [["lone"], ["lead", "mate"]]
    assert seen == [(1, 0.0), (2, pytest.approx(0.23))]
    assert done[1].batch_size == done[2].batch_size == 2
    assert done[1].wait_sec == done[2].wait_sec == pytest.approx(0.23)


async def test_queue_limit_and_cancellation_leave_nothing_behind() -> None:
    model = FakeModel()
    batcher, _ = make(model, limit=1)
    first = await busy_then(batcher, model)
    waiting = asyncio.create_task(batcher.submit("k", Priority.final, "w"))
    await settle(lambda: batcher.pending == 1)
    with pytest.raises(QueueFull):
        await batcher.submit("k", Priority.final, "over")
    assert batcher.pending == 1
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert batcher.pending == 0 and batcher.scheduler.waiting == 0
    model.hold.set()
    assert (await first).result == "FIRST"
    assert batcher.scheduler.running == 0


def test_batch_key_sends_only_supported_requests_to_the_batcher() -> None:
    window = DecodeOptions(language="pt", beam_size=5, temperature=0.0)
    key = batch_key(16000 * 8, window, Priority.final)
    assert key is not None
    assert key == batch_key(16000, window.model_copy(), Priority.final)
    assert key != batch_key(16000, window.model_copy(update={"beam_size": 3}), Priority.final)
    assert key != batch_key(16000, window, Priority.file)
    for options, samples, priority in [
        (window, 16000, Priority.partial),  # the draft pass
        (window.model_copy(update={"language": None}), 16000, Priority.final),  # detection
        (window.model_copy(update={"temperature": None}), 16000, Priority.final),  # fallback
        (window.model_copy(update={"vad_filter": True}), 16000, Priority.final),
        (window, MAX_BATCHED_SAMPLES + 1, Priority.final),  # seeking over 30 s
    ]:
        assert batch_key(samples, options, priority) is None


def layout(frames: list[int], pack: bool, gap: int, max_per_input: int) -> list[list[tuple]]:
    """(window, offset) per encoder input, in input order."""
    plan = plan_pass(frames, pack=pack, gap=gap, max_per_input=max_per_input)
    return [[(i.window, i.offset) for i in plan.on_input(k)] for k in range(plan.inputs)]


def test_packing_layout() -> None:
    # 8 s windows with 1 s gaps: three fit in 29 s (1 s of padding kept at the end)
    assert layout([800] * 4, pack=True, gap=100, max_per_input=3) == [
        [(0, 0), (1, 900), (2, 1800)],
        [(3, 0)],
    ]
    assert layout([800] * 2, pack=False, gap=100, max_per_input=3) == [[(0, 0)], [(1, 0)]]
    assert layout([800] * 3, pack=True, gap=100, max_per_input=2) == [
        [(0, 0), (1, 900)],
        [(2, 0)],
    ]
    # first fit: a short window fills the gap an earlier long one left
    assert layout([2000, 1500, 600], pack=True, gap=100, max_per_input=3) == [
        [(0, 0), (2, 2100)],
        [(1, 0)],
    ]


def test_pass_plan_ends_and_shared_windows() -> None:
    plan = plan_pass([800, 700, 2500], pack=True, gap=100, max_per_input=3)
    assert plan.items[1] == ItemPlan(window=1, input=0, offset=900, frames=700)
    assert plan.input_end(0) == 1600 and plan.input_end(1) == 2500
    assert plan.shared == [0, 1]
    alone = plan_pass([800, 700], pack=False, gap=100, max_per_input=3)
    assert alone.inputs == 2 and alone.shared == []
    assert [i.input for i in alone.items] == [0, 1]


def test_coverage_of_speech_by_words() -> None:
    words = [RawWord(" a", 1.0, 1.5, 0.9), RawWord(" b", 1.6, 2.0, 0.9)]
    segments = [RawSegment(1.0, 2.0, " a b", -0.2, 0.0, 1.0, words)]
    assert coverage(segments, [(1.0, 2.0)]) == pytest.approx(1.0)
    assert coverage(segments, [(1.0, 2.0), (5.0, 6.0)]) == pytest.approx(0.5)
    assert coverage([], [(1.0, 2.0)]) == 0.0
    assert coverage([], []) == 1.0


def test_batching_defaults_follow_the_device() -> None:
    """Measured (docs/benchmarks.md): on CPU a batch costs the sum of its inputs, so auto is
    off there; on CUDA a batch costs little more than one input, so auto is on."""
    from asr.config import WorkerSettings

    assert not WorkerSettings(device="cpu").resolved_batching
    assert WorkerSettings(device="cuda").resolved_batching
    assert WorkerSettings(device="cpu", batching="on").resolved_batching
    assert not WorkerSettings(device="cuda", batching="off").resolved_batching
    assert not WorkerSettings().pack  # packing is opt-in: it costs accuracy
