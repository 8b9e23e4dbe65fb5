"""Batch mode: cut windows at pauses, transcribe them in order, one at a time.

Each window is sent with up to `context_sec` of the audio before it (starting at a word already
sent), and only words that end after what was already sent are kept. Whisper transcribes a
2 s fragment badly (measured on pt-longform-dev: 37% WER in bare 2 s windows against 15% for the
whole file); with the context it hears whole phrases, and the 30 s encoder costs the same.
A word that touches the end of its window may be cut in half: it is held back and sent with the
next window. When the speaker stops (`utterance_end_ms` of silence) the pending text is
finalised at once; windows without speech never reach the worker.

Every decision (the next cut, an endpoint, the flush at the end) is taken at the earliest point
of the audio where it is known, so the windows depend on the audio alone. While a window is at
the worker, audio keeps arriving and waits; only when the pool is slower than real time does
the next window grow (up to max_window), so the session catches up in fewer calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from api.core.channel import ChannelCore, pool_seconds
from api.core.steps import Step, WindowRequest
from api.core.windowing import FRAME_SAMPLES, CutPlan, choose_cut, quiet_threshold
from contracts.audio import SAMPLE_RATE
from contracts.logs import get_logger
from contracts.words import kept_before_loop, shift_words
from contracts.worker import SpeechSpans, TranscriptionResponse, Word

log = get_logger("api.core.batch")

HOLD_BACK_SEC = 0.12  # a last word ending this close to the cut may be cut in half
LEVEL_SEC = 8.0  # the speaker's level: the audio before a window's start, and its minimum


def frames(seconds: float) -> int:
    return max(1, round(seconds * SAMPLE_RATE / FRAME_SAMPLES))


@dataclass
class Decision:
    end: int | None  # where the window ends (absolute); None: only an utterance_end
    final: bool
    endpoint: int | None  # the end of speech an utterance_end reports after this window
    behind: bool = False


@dataclass
class _Job:
    """The window at the pool."""

    since: int
    end: int
    final: bool
    endpoint: int | None
    cut_at: float
    behind: bool
    alone: bool = False
    pool_sec: float = 0.0  # what its requests cost at the worker


class BatchPolicy(ChannelCore):
    def __init__(self, *args: Any, **kwargs: Any) -> None:  # ChannelCore's arguments
        super().__init__(*args, **kwargs)
        batch = self.config.batch
        self.plan = CutPlan(
            min_frames=frames(batch.batch_window_sec),
            search_frames=frames(self.settings.pause_search_sec),
            max_frames=frames(batch.max_batch_window_sec),
            pause_frames=frames(self.settings.pause_min_ms / 1000),
        )
        self._job: _Job | None = None
        self._carried = False  # the last window's audio was carried into the next
        self._threshold: tuple[int, float] | None = None  # (cursor, threshold) of the last cut

    # ---- deciding ------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return self._job is not None

    @property
    def drained(self) -> bool:
        return self.committed_offset >= self.track.received

    def begin(self, decision: Decision, now: float) -> Step:
        if decision.end is None:
            assert decision.endpoint is not None
            return Step([self.utterance_end_event(decision.endpoint)])
        self.track.advance(decision.end - self.track.cursor)
        return self._start(decision, now)

    def decide(self) -> Decision | None:
        """The next thing to do with the audio up to the horizon, or None to wait."""
        track = self.track
        horizon = self.horizon
        endpoint = self.endpoint()
        cut = self._cut(horizon)
        if endpoint is not None and (cut is None or endpoint + self.utterance_end <= cut[1]):
            known_at = endpoint + self.utterance_end
            if self.committed_offset < endpoint and track.cursor < known_at:
                return Decision(known_at, True, endpoint)  # the speaker stopped: finalise now
            return Decision(None, False, endpoint)
        if cut is not None:
            end = cut[0]
            return Decision(end, self.finishing and end >= track.received, None, cut[2])
        if self.finishing and self.committed_offset < track.received:
            return Decision(track.received, True, None)  # the end flushes everything left
        return None

    def _cut(self, horizon: int) -> tuple[int, int, bool] | None:
        """(where the next cut ends, the audio position it needed, whether it grew) or None."""
        track = self.track
        pending = horizon - track.cursor
        if pending < self.plan.min_frames * FRAME_SAMPLES:
            return None
        threshold = self._level_threshold()
        db = track.pending_db[: pending // FRAME_SAMPLES]
        cut = choose_cut(db, threshold, self.plan, behind=self.behind)
        if cut is None:
            return None
        grew = cut.at > self.plan.min_frames + self.plan.search_frames
        base = track.cursor
        return base + cut.at * FRAME_SAMPLES, base + cut.needed * FRAME_SAMPLES, grew

    def _level_threshold(self) -> float:
        """The quiet threshold at this cursor, from a stretch of audio fixed by the cursor:
        the speaker's last LEVEL_SEC and the window's minimum."""
        cursor = self.track.cursor
        if self._threshold is None or self._threshold[0] != cursor:
            start = max(self.track.origin, cursor - int(LEVEL_SEC * SAMPLE_RATE))
            end = cursor + self.plan.min_frames * FRAME_SAMPLES
            self._threshold = (cursor, quiet_threshold(self.track.levels(start, end)))
        return self._threshold[1]

    # ---- one window ----------------------------------------------------------------------

    def _start(self, decision: Decision, now: float) -> Step:
        assert decision.end is not None
        since = self.committed_offset
        job = _Job(since, decision.end, decision.final, decision.endpoint, now, decision.behind)
        if not self.has_speech(since, job.end):
            return self._finish(job, job.end, now, to_pool=False)  # nothing to ask
        self.windows += 1
        self.meter.window_sent("final")
        self._job = job
        start = self.context_start(since, self.settings.context_sec)
        options = self.options(prefix=self.prefix(start, since))
        return Step(request=self.request("window", start, since, job.end, options))

    def on_response(
        self, request: WindowRequest, result: TranscriptionResponse, now: float
    ) -> Step:
        job = self._job
        assert job is not None
        job.pool_sec += pool_seconds(result)
        words = self._after(result, request, job.since)
        empty = (
            request.purpose == "window"
            and not words
            and request.start < job.since
            and _speech_after(request.speech_spans or result.speech_spans, request, job.since)
        )
        if (
            empty
            and self.settings.batch_empty_window == "carry"
            and not job.final
            and not self._carried
        ):
            # whisper dropped the last words of its input: hear them again in the next window
            self._job, self._carried = None, True
            self.ledger.observe_language(result)
            return self._finish(job, job.since, now, to_pool=True)
        if empty:
            # whisper sometimes drops the last words of its input: ask for the new part alone
            job.alone = True
            return Step(
                request=self.request("alone", job.since, job.since, job.end, self.options())
            )
        self._job, self._carried = None, False
        self.ledger.observe_language(result)
        next_offset = job.end
        held = bool(words) and not job.final and self._cut_mid_word(words[-1], job.end)
        if held:
            next_offset = max(job.since, int(words.pop().start * SAMPLE_RATE))
        elif words and not job.final:
            # the next window takes over from the last word: words whisper dropped at the end
            # of this input are heard again there
            next_offset = max(job.since, min(job.end, int(words[-1].end * SAMPLE_RATE)))
        events: list[BaseModel] = []
        if words:
            span = self.span(job.since, job.end)
            events.append(
                self.transcript_event(words, result.language, span, job.cut_at, now, job.behind)
            )
        log.debug(
            "window",
            channel=self.channel,
            since=round(job.since / SAMPLE_RATE, 3),
            end=round(job.end / SAMPLE_RATE, 3),
            context_sec=round((job.since - request.start) / SAMPLE_RATE, 3),
            words=len(words),
            retried_alone=job.alone,
            next=round(next_offset / SAMPLE_RATE, 3),
            held=held,
            final=job.final,
            behind=job.behind,
            ms=round((now - job.cut_at) * 1000),
        )
        return Step(events).then(self._finish(job, next_offset, now, to_pool=True))

    def on_failure(self, request: WindowRequest, message: str, now: float) -> Step:
        job = self._job
        assert job is not None
        self._job = None
        span = self.span(job.since, job.end)
        events = self.failure_events(
            span, f"audio {span.start:.2f}-{span.end:.2f} s failed: {message}"
        )
        return Step(list(events)).then(
            self._finish(job, job.end, now, to_pool=False, endpoint=False)
        )

    def _finish(
        self, job: _Job, offset: int, now: float, to_pool: bool, endpoint: bool = True
    ) -> Step:
        self.committed_offset = offset
        self.meter.transcribed((offset - job.since) / SAMPLE_RATE)
        self.meter.window_done(now - job.cut_at)
        if to_pool:
            self.observe_load(job.end - job.since, job.pool_sec)
        self.track.forget_arrivals_before(self.committed_offset)
        step = Step(committed=True)
        if endpoint and job.final and job.endpoint is not None:
            step.events.append(self.utterance_end_event(job.endpoint))
        return step

    # ---- words ---------------------------------------------------------------------------

    def _cut_mid_word(self, last: Word, end: int) -> bool:
        """The last word may be incomplete: speech goes on after it before the cut (the VAD
        hears it), so whisper heard it without what follows it ("America" of "Americans");
        it goes again, with context on both sides, in the next window. Measured over the dev
        set (bench/experiments/replay.py): 21.4% -> 18.2% WER for the balanced profile, with
        carrying an empty window (below). `cut` is the earlier rule: only a last word that
        reaches the cut, where speech goes on; whisper stretches a last word's end to the end
        of its input, so the time alone would hold back most last words."""
        if self.settings.batch_hold_back == "speech":
            after = int(last.end * SAMPLE_RATE) + SAMPLE_RATE // 20
            return self.speech is None or self.speech.speech_between(min(after, end - 1), end)
        if last.end < end / SAMPLE_RATE - HOLD_BACK_SEC:
            return False
        return self.speech is None or self.speech.speech_between(end - SAMPLE_RATE // 10, end)

    def _after(
        self, result: TranscriptionResponse, request: WindowRequest, since: int
    ) -> list[Word]:
        """The response's words (absolute times) whose middle lies after `since` (after a
        prefix, the worker sent only those)."""
        words = shift_words(
            (w for seg in result.segments for w in seg.words), request.start / SAMPLE_RATE
        )
        words = words[: kept_before_loop(request.options.prefix, [w.word for w in words])]
        if request.options.prefix is not None:
            return words
        boundary = since / SAMPLE_RATE
        fresh = [w for w in words if (w.start + w.end) / 2 >= boundary]
        # the word just before the boundary, heard again with shifted times
        if fresh and self.same_as_last_word(fresh[0].word) and fresh[0].start < boundary + 0.2:
            fresh = fresh[1:]
        return fresh


def _speech_after(spans: SpeechSpans, request: WindowRequest, since: int) -> bool:
    offset = (since - request.start) / SAMPLE_RATE
    return any(end > offset + 0.1 for _, end in spans)
