"""Live connections, dropped sessions waiting for a resume, finished transcripts.

One registry per gateway process (on app.state): it enforces the session limits, parks a
session whose client dropped so it can be resumed, keeps finished transcripts for a while, and
drains everything on shutdown.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from api.auth import ANONYMOUS
from contracts.logs import get_logger

if TYPE_CHECKING:
    from api.connection import Connection
    from api.session import Session

log = get_logger("api.registry")


@dataclass
class FinishedTranscript:
    owner: str
    expires: float
    body: dict[str, Any]


class SessionRegistry:
    def __init__(self, max_sessions: int, max_per_key: int, transcript_ttl_sec: float) -> None:
        self.max_sessions = max_sessions
        self.max_per_key = max_per_key
        self.transcript_ttl = transcript_ttl_sec
        self.connections: set[Connection] = set()
        self._per_key: Counter[str] = Counter()
        self._parked: dict[str, tuple[Session, asyncio.TimerHandle]] = {}
        self._finished: dict[str, FinishedTranscript] = {}
        self.draining = False

    # ---- admission -------------------------------------------------------------------------

    def admit(self, key: str) -> str | None:
        """None when a new session may start, else why not."""
        if self.draining:
            return "the gateway is shutting down"
        active = sum(self._per_key.values()) + len(self._parked)
        if active >= self.max_sessions:
            return f"the gateway is at its limit of {self.max_sessions} sessions"
        # with auth off every session is "anonymous": a per-key limit there would only be a
        # second, smaller global limit
        if key != ANONYMOUS and self._per_key[key] >= self.max_per_key:
            return f"this key is at its limit of {self.max_per_key} sessions"
        return None

    def opened(self, key: str) -> None:
        self._per_key[key] += 1

    def closed(self, key: str) -> None:
        self._per_key[key] -= 1
        if self._per_key[key] <= 0:
            del self._per_key[key]

    # ---- resume ----------------------------------------------------------------------------

    def park(self, session: Session, grace_sec: float) -> None:
        loop = asyncio.get_running_loop()
        timer = loop.call_later(grace_sec, lambda: loop.create_task(self._expire(session.id)))
        self._parked[session.id] = (session, timer)
        log.info("session_parked", session_id=session.id, grace_sec=grace_sec)

    def unpark(self, session_id: str, owner: str) -> Session | None:
        entry = self._parked.get(session_id)
        if entry is None or entry[0].owner != owner:
            return None
        del self._parked[session_id]
        entry[1].cancel()
        return entry[0]

    async def _expire(self, session_id: str) -> None:
        entry = self._parked.pop(session_id, None)
        if entry is None:
            return
        session = entry[0]
        log.info("session_resume_expired", session_id=session_id)
        await session.finish()  # nothing received is lost: it is transcribed and kept
        self.store(session)

    # ---- finished transcripts ----------------------------------------------------------------

    def store(self, session: Session) -> None:
        now = time.monotonic()
        self._finished = {k: v for k, v in self._finished.items() if v.expires > now}
        if self.transcript_ttl > 0:
            self._finished[session.id] = FinishedTranscript(
                session.owner, now + self.transcript_ttl, session.transcript()
            )

    def transcript(self, session_id: str, owner: str) -> dict[str, Any] | None:
        entry = self._finished.get(session_id)
        if entry is None or entry.expires < time.monotonic() or entry.owner != owner:
            return None
        return entry.body

    # ---- shutdown ----------------------------------------------------------------------------

    async def drain(self, limit_sec: float) -> None:
        """Stop admitting, finish every session (flush, `end`, close 1001) within timeout."""
        self.draining = True
        parked = [self._parked.pop(k)[0] for k in list(self._parked)]
        jobs = [c.drain() for c in list(self.connections)] + [s.finish() for s in parked]
        if not jobs:
            return
        log.info("gateway_draining", sessions=len(jobs))
        done, pending = await asyncio.wait(
            [asyncio.ensure_future(j) for j in jobs], timeout=limit_sec
        )
        for task in pending:
            task.cancel()
        log.info("gateway_drained", finished=len(done), cancelled=len(pending))
