"""What both modes of a session channel share: its audio and speech timeline, the committed
point, endpointing, partials, how fast the pool keeps up, and how words become events.

Decisions here look at the audio up to the `horizon` (what was received and scored by the VAD),
never at when it arrived, so the same audio gives the same windows and the same text. The one
exception is declared: when the pool is slower than real time (`behind`), windows grow.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from api.config import GatewaySettings
from api.core.ledger import SessionLedger
from api.core.speech import CHUNK, SpeechTimeline
from api.core.steps import Meter, Purpose, Step, WindowRequest
from api.core.track import AudioTrack
from api.session_config import SessionConfig
from contracts.audio import SAMPLE_RATE
from contracts.events import (
    ErrorCode,
    ErrorEvent,
    PartialEvent,
    Span,
    Timing,
    TranscriptEvent,
    UtteranceEndEvent,
    WordOut,
)
from contracts.words import same_word
from contracts.worker import DecodeOptions, Priority, TranscriptionResponse, Word

MIN_PARTIAL_NEW_SEC = 0.25  # not worth a partial for less new audio than this
LOAD_SMOOTHING = 0.3  # weight of the latest window in the pool's load estimate
# pool seconds per second of audio: above BEHIND_LOAD the pool falls behind real time (windows
# may grow); it has caught up again below KEPT_UP_LOAD (a margin, so noise around 1.0 in a
# pool that just keeps up does not flip the windows back and forth)
BEHIND_LOAD = 1.1
KEPT_UP_LOAD = 0.9


@dataclass(frozen=True)
class SentWord:
    start: int  # absolute samples
    end: int
    text: str | None  # as the worker spelled it (leading space included); None: not known


def pool_seconds(result: TranscriptionResponse) -> float:
    """What a request cost at the worker: its wait for the model and its model time."""
    timing = result.timing
    return (timing.queue_ms + timing.inference_ms + timing.decode_ms) / 1000


class ChannelCore:
    def __init__(
        self,
        channel: int,
        settings: GatewaySettings,
        config: SessionConfig,
        ledger: SessionLedger,
        meter: Meter,
        offset: int = 0,
        context: int = 0,
        context_word_starts: Sequence[int] = (),
    ) -> None:
        """`offset`: where this channel's timeline starts (absolute samples). `context`: samples
        the client sends before it, heard by the model ahead of the first window but never
        transcribed (the tail of a session the gateway lost, continued by a new one), with the
        starts of the words in it."""
        self.channel = channel
        self.settings = settings
        self.config = config
        self.ledger = ledger
        self.meter = meter
        keep = max(settings.context_sec, settings.stream_buffer_max_sec) + 2.0
        begin = offset - context
        self.track = AudioTrack(channel, keep_sec=keep, start_offset=begin)
        self._context_until = offset
        # VAD chunks line up with the timeline's start; a partial chunk of context is skipped
        vad_start = offset - context // CHUNK * CHUNK
        self.speech = (
            SpeechTimeline(settings.vad_threshold, start=vad_start)
            if settings.vad_enabled
            else None
        )
        self.committed_offset = offset  # absolute samples: all before is final (or failed)
        self.commits = 0  # bumped by every transcript: a partial asked for before is stale
        self.windows = 0
        self.committed_text = ""
        self.last_partial_end = offset
        # the words sent lately (their text unknown for a resumed session's context): the
        # context sent with a window starts at one, and its text can be the decoder's prefix
        starts = sorted(context_word_starts) or ([begin] if context else [])
        self._sent_words: deque[SentWord] = deque(SentWord(s, s, None) for s in starts)
        self._last_word = ""
        self._last_start = 0.0  # seconds: the start of the last word sent
        self.utterance_end_sent = offset  # absolute sample of the last utterance_end
        self.utterance_end = settings.utterance_end_ms * SAMPLE_RATE // 1000
        self.finishing = False
        self.load = 0.0  # smoothed pool seconds per second of audio, queueing included
        self.behind = False  # the pool is slower than real time: only then may windows grow

    # ---- audio in ------------------------------------------------------------------------

    def push(self, samples: np.ndarray, arrival: float) -> None:
        self.track.append(samples, arrival)
        if self.track.cursor < self._context_until:  # context is never a window of its own
            self.track.advance(min(self.track.received, self._context_until) - self.track.cursor)

    def finish(self) -> None:
        self.finishing = True

    def release(self) -> None:
        """The session is over: free the audio (see api/session.py)."""
        self.track.release()
        if self.speech is not None:
            self.speech.release()

    @property
    def horizon(self) -> int:
        """How far decisions may look: audio received and scored by the VAD. Once the client
        has stopped and the VAD has scored every whole chunk, all of it (the last partial
        chunk is never scored)."""
        received = self.track.received
        if self.speech is None:
            return received
        scored = self.speech.scored_until
        if self.finishing and received - scored < CHUNK:
            return received
        return min(received, scored)

    # ---- the pool ------------------------------------------------------------------------

    def poll(self, now: float) -> Step:
        """What to do now: events, and the next request unless one is at the pool."""
        step = Step()
        if self.busy:
            return step
        while (decision := self.decide()) is not None:
            step = step.then(self.begin(decision, now))
            if step.request is not None:
                return step
        step.done = self.finishing and self.drained
        return step

    @property
    def context_sec(self) -> float:
        """How much audio before the committed point a request hears again."""
        return self.settings.context_sec

    # a mode's policy: its next decision on the audio, and acting on one
    @property
    def busy(self) -> bool:
        raise NotImplementedError

    @property
    def drained(self) -> bool:
        """Everything received has been decided on (and, finishing, the channel is done)."""
        raise NotImplementedError

    def decide(self) -> Any:
        raise NotImplementedError

    def begin(self, decision: Any, now: float) -> Step:
        raise NotImplementedError

    def on_response(
        self, request: WindowRequest, result: TranscriptionResponse, now: float
    ) -> Step:
        raise NotImplementedError

    def on_failure(self, request: WindowRequest, message: str, now: float) -> Step:
        raise NotImplementedError

    def observe_load(self, audio_samples: int, pool_sec: float) -> None:
        """A window or pass of `audio_samples` new audio cost the pool `pool_sec` (queueing
        and model time as the worker reports them: a worker that was down or a retry is not
        the pool being slow, and must not grow the windows after it)."""
        if audio_samples > 0:
            sample = pool_sec / (audio_samples / SAMPLE_RATE)
            self.load = (1 - LOAD_SMOOTHING) * self.load + LOAD_SMOOTHING * sample
        if self.load > BEHIND_LOAD:
            self.behind = True
        elif self.load < KEPT_UP_LOAD:
            self.behind = False

    def request(
        self,
        purpose: Purpose,
        start: int,
        since: int,
        end: int,
        options: DecodeOptions,
        priority: Priority = Priority.final,
        version: int = 0,
    ) -> WindowRequest:
        start = max(start, self.track.base)
        spans = self.speech.spans(start, end) if self.speech is not None else None
        return WindowRequest(
            self.channel,
            purpose,
            start,
            since,
            end,
            self.track.audio(start, end),
            options,
            priority,
            spans,
            version,
        )

    def options(self, **overrides: object) -> DecodeOptions:
        values: dict[str, object] = {
            "language": self.ledger.language,
            "beam_size": self.config.batch.beam_size,
            "best_of": self.config.batch.best_of,
            "temperature": 0.0,  # no fallback ladder: a window's cost stays predictable
            "initial_prompt": self.config.prompt,
            "hotwords": self.config.hotwords,
            "word_timestamps": True,
            "encoder_pad_sec": self.settings.window_encoder_pad_sec,
        }
        values.update(overrides)
        return DecodeOptions(**values)

    def context_start(self, since: int, context_sec: float) -> int:
        """Start of the audio sent before `since`: a word already sent, at most context_sec."""
        floor = max(since - int(context_sec * SAMPLE_RATE), self.track.base)
        while self._sent_words and self._sent_words[0].start < floor:
            self._sent_words.popleft()
        start = self._sent_words[0].start if self._sent_words else since
        return max(min(start, since) - SAMPLE_RATE // 10, self.track.base)

    def prefix(self, start: int, since: int) -> str | None:
        """The text of the words sent that the audio [start, since) holds, for the decoder to
        be forced through (it then returns only what follows); None where there are none, or
        one of them is not known (a resumed session's context) or reaches past `since`."""
        if not self.settings.decoder_prefix:
            return None
        words = [w for w in self._sent_words if w.start >= start]
        if not words or any(w.text is None or w.start >= since for w in words):
            return None
        return "".join(w.text or "" for w in words).strip() or None

    # ---- speech ----------------------------------------------------------------------------

    def has_speech(self, start: int, end: int) -> bool:
        return self.speech is None or self.speech.speech_between(start, end)

    def endpoint(self) -> int | None:
        """The first end of speech after the last utterance_end that `utterance_end_ms` of
        silence followed, within the horizon: the absolute end of that speech, or None."""
        if self.speech is None:
            return None
        return self.speech.pause_after(self.utterance_end_sent, self.utterance_end, self.horizon)

    def utterance_end_event(self, speech_end: int) -> UtteranceEndEvent:
        self.utterance_end_sent = max(self.utterance_end_sent, speech_end)
        return UtteranceEndEvent(end=round(speech_end / SAMPLE_RATE, 3), channel=self.channel)

    # ---- partials --------------------------------------------------------------------------

    def partial_request(self) -> WindowRequest | None:
        """A cheap look at the uncommitted tail, when there is new speech to show."""
        end = self.track.received
        since = self.committed_offset
        start = max(since, end - int(self.settings.partial_max_sec * SAMPLE_RATE))
        if end - max(start, self.last_partial_end) < MIN_PARTIAL_NEW_SEC * SAMPLE_RATE:
            return None
        if self.finishing or not self.has_speech(start, end):
            return None
        # the tail alone: a draft that heard the committed context too (its words as the
        # prefix) cost a decoder step per prefix token, beside the finals it must not slow
        options = self.options(beam_size=1, best_of=1, word_timestamps=False)
        return self.request("partial", start, start, end, options, Priority.partial, self.commits)

    def on_partial(
        self, request: WindowRequest, result: TranscriptionResponse
    ) -> list[PartialEvent]:
        if request.version != self.commits or self.finishing:
            return []  # a transcript covered its audio meanwhile: stale
        self.meter.window_sent("partial")
        # (after a prefix the draft holds only what follows the words sent)
        start = max(request.start, request.since)
        return [self.partial_event(result.text, start, request.end)]

    def partial_event(self, text: str, start: int, end: int) -> PartialEvent:
        self.last_partial_end = end
        return PartialEvent(text=text, start=round(start / SAMPLE_RATE, 3), channel=self.channel)

    # ---- events out ----------------------------------------------------------------------

    def transcript_event(
        self, words: list[Word], language: str, span: Span, cut_at: float, now: float, behind: bool
    ) -> TranscriptEvent:
        out: list[WordOut] = []
        for w in words:
            # word times differ a little between windows: keep the timeline's starts in order
            start = max(w.start, self._last_start)
            out.append(
                WordOut(
                    word=w.word.strip(),
                    start=start,
                    end=max(w.end, start),
                    probability=w.probability,
                )
            )
            self._last_start = start
        text = "".join(w.word for w in words).strip()
        self.commits += 1
        event = TranscriptEvent(
            segment_id=self.ledger.next_segment_id(),
            text=text,
            words=out,
            start=out[0].start,
            end=out[-1].end,
            language=language,
            channel=self.channel,
            behind=behind,
            timing=Timing(
                window_sec=round(span.end - span.start, 3),
                queue_ms=0.0,
                inference_ms=0.0,
                batch_ms=round((now - cut_at) * 1000, 1),
            ),
        )
        for shown in out:
            arrived = self.track.arrival_of(round(shown.end * SAMPLE_RATE))
            if arrived is not None:
                self.meter.word_latency(max(0.0, now - arrived))
        for word, sent in zip(words, out, strict=True):
            self._sent_words.append(
                SentWord(int(sent.start * SAMPLE_RATE), int(sent.end * SAMPLE_RATE), word.word)
            )
        self._last_word = words[-1].word
        self.committed_text = f"{self.committed_text} {text}".strip()
        self.ledger.record(event)
        return event

    def failure_events(self, span: Span, message: str) -> list[ErrorEvent]:
        self.ledger.failed_spans.append(span)
        self.meter.error("worker_failed")
        return [ErrorEvent(code=ErrorCode.worker_failed, message=message, span=span)]

    def same_as_last_word(self, word: str) -> bool:
        return same_word(word, self._last_word)

    def span(self, start: int, end: int) -> Span:
        return Span(start=start / SAMPLE_RATE, end=end / SAMPLE_RATE, channel=self.channel)
