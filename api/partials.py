"""Partial results: about every `partial_interval_ms`, a cheap look at the uncommitted tail.

Requests go to the worker's partial lane (greedy, short encoder input; asr/draft.py), which turns
them away whenever anything else is waiting, so they never delay a final transcript. A partial
that comes back after a transcript covered its audio is stale and dropped.
"""

from __future__ import annotations

import asyncio

from api.asr_client import WorkerError
from api.channel import Channel
from asr.audio import SAMPLE_RATE
from asr.schemas import Priority

MIN_NEW_SEC = 0.25  # not worth a request for less new audio than this
BUSY_RETRY_SEC = 0.1  # the worker was busy: look again soon, it may be idle between windows


async def run_partials(channel: Channel) -> None:
    settings = channel.session.settings
    interval = settings.partial_interval_ms / 1000
    wait = interval
    while not channel.finishing:
        await asyncio.sleep(wait)
        wait = interval
        end = channel.track.received
        start = max(channel.committed_offset, end - int(settings.partial_max_sec * SAMPLE_RATE))
        if end - max(start, channel.last_partial_end) < MIN_NEW_SEC * SAMPLE_RATE:
            continue
        if not channel.has_speech(start, end):
            continue
        version = channel.commits
        options = channel.options(beam_size=1, best_of=1, word_timestamps=False)
        try:
            result = await channel.session.asr.transcribe(
                channel.track.audio(start, end), options, Priority.partial
            )
        except WorkerError:
            wait = BUSY_RETRY_SEC  # best effort: the worker was busy with finals
            continue
        if channel.commits != version or channel.finishing:
            continue
        channel.session.metrics.windows.labels("partial").inc()
        channel.emit_partial(result.text, start, end)
