"""The loops that move a session channel's bytes: score new audio with the VAD, ask the session
core what to do, send its requests to the pool and its events to the client. No decisions here.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from api.core.steps import Step, WindowRequest
from api.pool import WorkerError

if TYPE_CHECKING:  # the session owns its loops; they only use its parts
    from api.session import Session

PARTIAL_BUSY_RETRY_SEC = 0.1  # the worker turned a partial away: look again soon


async def run_channel(session: Session, index: int) -> None:
    """Final windows of one channel, one at a time, in order, until the session is done. The
    VAD scores what arrived before every decision."""
    core, wake, vad = session.core, session.wakes[index], session.vads[index]
    channel = core.channels[index]
    while True:
        if vad is not None:
            await vad.update(channel.track)
        step = core.poll(index, time.monotonic())
        _deliver(session, step)
        while step.request is not None:  # the window, and its retry without context if any
            step = await _ask(session, step.request)
            _deliver(session, step)
        if step.done:
            if vad is not None:  # the insights meter hears every chunk, the last ones too
                await vad.update(channel.track)
            return
        if step.committed:
            continue  # a window came back: there may be more to do at once
        await wake.wait()
        wake.clear()


async def _ask(session: Session, request: WindowRequest) -> Step:
    try:
        result = await session.pool.transcribe(
            request.audio, request.options, request.priority, request.speech_spans
        )
    except WorkerError as exc:
        return session.core.on_failure(request, str(exc), time.monotonic())
    return session.core.on_response(request, result, time.monotonic())


def _deliver(session: Session, step: Step) -> None:
    for event in step.events:
        session.emit(event)


async def run_partials(session: Session, index: int) -> None:
    """About every `partial_interval_ms`, a cheap look at the uncommitted tail. The worker's
    partial lane turns partials away whenever it is busy, so they never delay a final."""
    channel = session.core.channels[index]
    interval = session.settings.partial_interval_ms / 1000
    wait = interval
    while not channel.finishing:
        await asyncio.sleep(wait)
        wait = interval
        request = channel.partial_request()
        if request is None:
            continue
        try:
            result = await session.pool.transcribe(
                request.audio, request.options, request.priority, request.speech_spans
            )
        except WorkerError:
            wait = PARTIAL_BUSY_RETRY_SEC  # best effort: the worker was busy with finals
            continue
        for event in channel.on_partial(request, result):
            session.emit(event)
