"""Batch mode: cut windows at pauses, transcribe them in order, one at a time.

Each window is sent with up to `context_sec` of the audio before it (starting at a word already
sent), and only words that end after what was already sent are kept. Whisper transcribes a
2 s fragment badly (measured on pt-longform-dev: 37% WER in bare 2 s windows against 15% for the
whole file); with the context it hears whole phrases, and the 30 s encoder costs the same.
A word that touches the end of its window may be cut in half: it is held back and sent with the
next window. While a window is at the worker, audio keeps arriving; the next window then holds
all of it (up to max_window), so a slow pool makes windows longer instead of a queue. When the
speaker stops (`utterance_end_ms` of silence) the pending text is finalised at once; windows
without speech never reach the worker.
"""

from __future__ import annotations

import time
from typing import Any

from api.asr_client import WorkerError
from api.channel import Channel
from api.events import ErrorCode, ErrorEvent, Span
from api.windowing import FRAME_SAMPLES, CutPlan, choose_cut, quiet_threshold
from asr.audio import SAMPLE_RATE
from asr.logs import get_logger
from asr.schemas import TranscriptionResponse, Word
from asr.textguard import repeated_tail_start

log = get_logger("api.pipeline")

HOLD_BACK_SEC = 0.12  # a last word ending this close to the cut may be cut in half


def frames(seconds: float) -> int:
    return max(1, round(seconds * SAMPLE_RATE / FRAME_SAMPLES))


class BatchPipeline(Channel):
    def __init__(self, session, channel: int, offset: int = 0, *context: Any) -> None:  # type: ignore[no-untyped-def]
        super().__init__(session, channel, offset, *context)  # context: see Channel
        settings = session.settings
        batch = session.config.batch
        self.plan = CutPlan(
            min_frames=frames(batch.batch_window_sec),
            search_frames=frames(settings.pause_search_sec),
            max_frames=frames(batch.max_batch_window_sec),
            pause_frames=frames(settings.pause_min_ms / 1000),
        )
        self._last_context, self._retried = 0, False  # for the per-window debug line

    async def run(self) -> None:
        while True:
            await self.update_vad()
            cut, final = self._next_cut()
            if cut is None:
                if self.finishing:
                    return
                await self.wait_for_audio()
                continue
            cut_at = time.monotonic()
            _, end = self.track.advance(cut)
            await self._window(end, cut_at, final or (self.finishing and not self.track.pending))
            self.track.forget_arrivals_before(self.committed_offset)

    def _next_cut(self) -> tuple[int | None, bool]:
        """(samples to cut, whether the text up to there is final), or (None, False)."""
        speech_end = self.endpoint()
        if speech_end is not None:
            if self.committed_offset < speech_end and self.track.pending:
                return self.track.pending, True  # the speaker stopped: finalise now
            self.emit_utterance_end(speech_end)
        threshold = quiet_threshold(self.track.recent_db())
        cut = choose_cut(self.track.pending_db, threshold, self.plan)
        if cut is not None:
            return cut * FRAME_SAMPLES, False
        if self.finishing and self.track.pending:
            return self.track.pending, True  # stop flushes everything, even a fraction of a second
        if self.session.at_buffer_limit and self.track.pending:
            return self.track.pending, False  # the socket is not read until we catch up
        return None, False

    async def _window(self, end: int, cut_at: float, final: bool) -> None:
        session = self.session
        since = self.committed_offset
        span = Span(start=since / SAMPLE_RATE, end=end / SAMPLE_RATE, channel=self.channel)
        if not self.has_speech(since, end):
            self._finish_window(since, end, cut_at)  # silence or noise: nothing to ask
            return
        self.windows += 1
        session.metrics.windows.labels("final").inc()
        try:
            words, result = await self._new_words(since, end)
        except WorkerError as exc:
            session.failed_spans.append(span)
            session.metrics.errors.labels("worker_failed").inc()
            session.emit(
                ErrorEvent(
                    code=ErrorCode.worker_failed,
                    message=f"audio {span.start:.2f}-{span.end:.2f} s failed: {exc}",
                    span=span,
                )
            )
            self._finish_window(since, end, cut_at)
            return
        session.observe_language(result)
        next_offset = end
        held = bool(words) and not final and self._cut_mid_word(words[-1], end)
        if held:
            next_offset = max(since, int(words.pop().start * SAMPLE_RATE))
        elif words and not final:
            # the next window takes over from the last word: words whisper dropped at the end
            # of this input are heard again there
            next_offset = max(since, min(end, int(words[-1].end * SAMPLE_RATE)))
        if words:
            self.emit_transcript(words, result.language, span, cut_at)
        log.debug(
            "window",
            session_id=session.id,
            channel=self.channel,
            since=round(since / SAMPLE_RATE, 3),
            end=round(end / SAMPLE_RATE, 3),
            context_sec=round(self._last_context / SAMPLE_RATE, 3),
            words=len(words),
            retried_alone=self._retried,
            next=round(next_offset / SAMPLE_RATE, 3),
            held=held,
            overlap=round((end - next_offset) / SAMPLE_RATE, 3),
            final=final,
            ms=round((time.monotonic() - cut_at) * 1000),
        )
        self._finish_window(since, next_offset, cut_at)
        speech_end = self.endpoint()
        if final and speech_end is not None and speech_end <= end:
            self.emit_utterance_end(speech_end)

    def _cut_mid_word(self, last: Word, end: int) -> bool:
        """The last word may be cut in half: it reaches the cut and, where the VAD can tell,
        speech goes on there. Whisper stretches a last word's end to the end of its input, so
        the time alone would hold back most last words (measured: 27 of 34 windows)."""
        if last.end < end / SAMPLE_RATE - HOLD_BACK_SEC:
            return False
        if self.vad is None:
            return True
        return self.vad.speech_between(end - SAMPLE_RATE // 10, end)

    def _finish_window(self, since: int, offset: int, cut_at: float) -> None:
        self.committed_offset = offset
        metrics = self.session.metrics
        metrics.audio.labels("transcribed").inc((offset - since) / SAMPLE_RATE)
        metrics.batch_duration.observe(time.monotonic() - cut_at)
        self.session.send_ack()

    async def _new_words(self, since: int, end: int) -> tuple[list[Word], TranscriptionResponse]:
        """Words after `since` (absolute times), transcribed with context before it."""
        options = self.options()
        start = self.context_start(since, self.session.settings.context_sec)
        self._last_context, self._retried = since - start, False
        result = await self.transcribe(self.track.audio(start, end), options)
        words = self._after(result, start / SAMPLE_RATE, since / SAMPLE_RATE)
        if not words and start < since and _speech_after(result, (since - start) / SAMPLE_RATE):
            # whisper sometimes drops the last words of its input: ask for the new part alone
            self._retried = True
            result = await self.transcribe(self.track.audio(since, end), options)
            words = self._after(result, since / SAMPLE_RATE, since / SAMPLE_RATE)
        return words, result

    def _after(self, result: TranscriptionResponse, offset: float, since: float) -> list[Word]:
        words = absolute_words(result, offset)
        words = words[: repeated_tail_start([w.word for w in words])]
        fresh = [w for w in words if (w.start + w.end) / 2 >= since]
        # the word just before the boundary, heard again with shifted times
        if fresh and self.same_as_last_word(fresh[0].word) and fresh[0].start < since + 0.2:
            fresh = fresh[1:]
        return fresh


def absolute_words(result: TranscriptionResponse, offset: float) -> list[Word]:
    return [
        Word(
            word=w.word,
            start=round(offset + w.start, 3),
            end=round(offset + w.end, 3),
            probability=w.probability,
        )
        for seg in result.segments
        for w in seg.words
        if w.word.strip()
    ]


def _speech_after(result: TranscriptionResponse, offset: float) -> bool:
    return any(end > offset + 0.1 for _, end in result.speech_spans)
