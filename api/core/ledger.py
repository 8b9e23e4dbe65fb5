"""What a session's channels share: its language, segment numbering, the transcripts sent (kept
for a resume's replay and for the finished transcript) and the spans that failed."""

from __future__ import annotations

from collections import deque

from contracts.events import Span, TranscriptEvent
from contracts.logs import get_logger
from contracts.worker import TranscriptionResponse

log = get_logger("api.core.ledger")

REPLAY_LIMIT = 1000  # transcripts kept to replay after a resume


class SessionLedger:
    def __init__(self, session_id: str, language: str | None, lock_speech_sec: float) -> None:
        self.session_id = session_id
        self.language = language
        self.lock_speech_sec = lock_speech_sec
        self.segments = 0
        self.words = 0
        self.texts: list[str] = []
        self.sent: deque[TranscriptEvent] = deque(maxlen=REPLAY_LIMIT)
        self.failed_spans: list[Span] = []

    def observe_language(self, result: TranscriptionResponse) -> None:
        """Keep the first language detected on enough speech for the rest of the session."""
        if self.language is None and result.speech_sec >= self.lock_speech_sec:
            self.language = result.language
            log.info("language_locked", session_id=self.session_id, language=self.language)

    def next_segment_id(self) -> int:
        self.segments += 1
        return self.segments - 1

    def record(self, event: TranscriptEvent) -> None:
        self.sent.append(event)
        self.texts.append(event.text)
        self.words += len(event.words)

    def replay_after(self, segment_id: int, held: set[int]) -> list[TranscriptEvent]:
        """Transcripts after `segment_id` a client may have missed (those still `held` for
        it will be delivered anyway)."""
        return [e for e in self.sent if e.segment_id > segment_id and e.segment_id not in held]

    @property
    def text(self) -> str:
        return " ".join(self.texts)
