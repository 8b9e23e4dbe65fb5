"""One channel's batch pipeline: cut windows at pauses, transcribe them in order, one at a time.

Each window is sent with up to `context_sec` of the audio before it (starting at a word already
sent), and only words that end after what was already sent are kept. Whisper transcribes a
2 s fragment badly (measured on pt-longform-dev: 37% WER in bare 2 s windows against 15% for the
whole file); with the context it hears whole phrases (19%), and the 30 s encoder costs the same.
A word that touches the end of its window may be cut in half: it is held back and sent with the
next window. While a window is at the worker, audio keeps arriving; the next window then holds
all of it (up to max_window), so a slow pool makes windows longer instead of a queue.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import TYPE_CHECKING

import numpy as np

from api.asr_client import WorkerError
from api.audio_track import AudioTrack
from api.events import ErrorCode, ErrorEvent, Span, Timing, TranscriptEvent, WordOut
from api.windowing import FRAME_SAMPLES, CutPlan, choose_cut, quiet_threshold
from asr.audio import SAMPLE_RATE
from asr.schemas import DecodeOptions, Priority, TranscriptionResponse, Word

if TYPE_CHECKING:
    from api.session import Session

HOLD_BACK_SEC = 0.12  # a last word ending this close to the cut may be cut in half


def frames(seconds: float) -> int:
    return max(1, round(seconds * SAMPLE_RATE / FRAME_SAMPLES))


class ChannelPipeline:
    def __init__(self, session: Session, channel: int) -> None:
        self.session = session
        self.channel = channel
        settings = session.settings
        self.context = int(settings.context_sec * SAMPLE_RATE)
        self.track = AudioTrack(channel, keep_sec=settings.context_sec + 2.0)
        batch = session.config.batch
        self.plan = CutPlan(
            min_frames=frames(batch.batch_window_sec),
            search_frames=frames(settings.pause_search_sec),
            max_frames=frames(batch.max_batch_window_sec),
            pause_frames=frames(settings.pause_min_ms / 1000),
        )
        self.committed_text = ""
        self.committed_offset = 0  # absolute samples: everything before is transcribed or failed
        self.windows = 0
        self._word_starts: deque[int] = deque()  # sent words' starts, for the context
        self._last_word = ""
        self._wake = asyncio.Event()
        self._finishing = False

    def push(self, samples: np.ndarray, arrival: float) -> None:
        self.track.append(samples, arrival)
        self._wake.set()

    def finish(self) -> None:
        self._finishing = True
        self._wake.set()

    async def run(self) -> None:
        while True:
            cut = self._next_cut()
            if cut is None:
                if self._finishing:
                    return
                await self._wake.wait()
                self._wake.clear()
                continue
            cut_at = time.monotonic()
            _, end = self.track.advance(cut)
            last = self._finishing and self.track.pending == 0
            await self._window(end, cut_at, last)
            self.track.forget_arrivals_before(self.committed_offset)

    def _next_cut(self) -> int | None:
        threshold = quiet_threshold(self.track.recent_db())
        cut = choose_cut(self.track.pending_db, threshold, self.plan)
        if cut is not None:
            return cut * FRAME_SAMPLES
        if self._finishing and self.track.pending:
            return self.track.pending  # stop flushes everything, even a fraction of a second
        return None

    def options(self) -> DecodeOptions:
        config = self.session.config
        return DecodeOptions(
            language=self.session.language,
            beam_size=config.batch.beam_size,
            best_of=config.batch.best_of,
            temperature=0.0,  # no fallback ladder: a window's cost stays predictable
            initial_prompt=self.prompt(),
            hotwords=config.hotwords,
            word_timestamps=True,
        )

    def prompt(self) -> str | None:
        parts = [self.session.config.prompt or ""]
        settings = self.session.settings
        if settings.prompt_enabled and settings.prompt_max_chars and self.committed_text:
            tail = self.committed_text[-settings.prompt_max_chars :]
            if len(self.committed_text) > settings.prompt_max_chars and " " in tail:
                tail = tail.split(" ", 1)[1]  # start at a word boundary
            parts.append(tail)
        prompt = " ".join(p for p in parts if p).strip()
        return prompt or None

    def _context_start(self) -> int:
        floor = max(self.committed_offset - self.context, self.track.base)
        while self._word_starts and self._word_starts[0] < floor:
            self._word_starts.popleft()
        start = self._word_starts[0] if self._word_starts else self.committed_offset
        return max(min(start, self.committed_offset) - SAMPLE_RATE // 10, self.track.base)

    async def _window(self, end: int, cut_at: float, last: bool) -> None:
        session = self.session
        since = self.committed_offset
        span = Span(start=since / SAMPLE_RATE, end=end / SAMPLE_RATE, channel=self.channel)
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
            self._advance_to(end)
            session.send_ack()
            return
        session.observe_language(result)
        next_offset = end
        if words and not last and words[-1].end >= (end / SAMPLE_RATE) - HOLD_BACK_SEC:
            next_offset = max(since, int(words.pop().start * SAMPLE_RATE))
        elif words and not last:
            # the next window takes over from the last word: words whisper dropped at the end
            # of this input are heard again there
            next_offset = max(since, min(end, int(words[-1].end * SAMPLE_RATE)))
        if words:
            self._emit_transcript(words, result.language, span, cut_at)
        self._advance_to(next_offset)
        session.metrics.audio.labels("transcribed").inc((next_offset - since) / SAMPLE_RATE)
        session.metrics.batch_duration.observe(time.monotonic() - cut_at)
        session.send_ack()

    async def _new_words(self, since: int, end: int) -> tuple[list[Word], TranscriptionResponse]:
        """Words after `since` (absolute times), transcribed with context before it."""
        asr = self.session.asr
        options = self.options()
        start = self._context_start()
        result = await asr.transcribe(self.track.audio(start, end), options, Priority.final)
        words = self._after(result, start / SAMPLE_RATE, since / SAMPLE_RATE)
        if not words and start < since and _speech_after(result, (since - start) / SAMPLE_RATE):
            # whisper sometimes drops the last words of its input: ask for the new part alone
            result = await asr.transcribe(self.track.audio(since, end), options, Priority.final)
            words = self._after(result, since / SAMPLE_RATE, since / SAMPLE_RATE)
        return words, result

    def _after(self, result: TranscriptionResponse, offset: float, since: float) -> list[Word]:
        words = [
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
        words = words[: repeated_tail_start(words)]
        fresh = [w for w in words if (w.start + w.end) / 2 >= since]
        # the word just before the boundary, heard again with shifted times
        if fresh and _same_word(fresh[0].word, self._last_word) and fresh[0].start < since + 0.2:
            fresh = fresh[1:]
        return fresh

    def _advance_to(self, offset: int) -> None:
        self.committed_offset = offset

    def _emit_transcript(self, words: list[Word], language: str, span: Span, cut_at: float) -> None:
        out = [
            WordOut(word=w.word.strip(), start=w.start, end=w.end, probability=w.probability)
            for w in words
        ]
        text = "".join(w.word for w in words).strip()
        event = TranscriptEvent(
            segment_id=self.session.next_segment_id(),
            text=text,
            words=out,
            start=out[0].start,
            end=out[-1].end,
            language=language,
            channel=self.channel,
            timing=Timing(
                window_sec=round(span.end - span.start, 3),
                queue_ms=0.0,
                inference_ms=0.0,
                batch_ms=round((time.monotonic() - cut_at) * 1000, 1),
            ),
        )
        self.session.emit(event)
        sent = time.monotonic()
        for word in out:
            arrived = self.track.arrival_of(round(word.end * SAMPLE_RATE))
            if arrived is not None:
                self.session.metrics.final_word_latency.observe(max(0.0, sent - arrived))
        for word in words:
            self._word_starts.append(int(word.start * SAMPLE_RATE))
        self._last_word = words[-1].word
        self.committed_text = f"{self.committed_text} {text}".strip()
        self.session.add_transcript(text, len(out))


def repeated_tail_start(words: list[Word], min_run: int = 5) -> int:
    """Where a looping tail starts: whisper sometimes repeats the phrase it just heard at the
    end of its input ("... fala Brasil para um teste dos modelos ... fala Brasil para"). A run
    of `min_run` or more words that already occurred earlier in the same hypothesis is cut."""
    keys = ["".join(ch for ch in w.word.lower() if ch.isalnum()) for w in words]
    n = len(keys)
    for start in range(max(1, n - 40), n - min_run + 1):
        run = keys[start : start + min_run]
        for earlier in range(0, start - min_run + 1):
            if keys[earlier : earlier + min_run] == run and all(run):
                return start
    return n


def _speech_after(result: TranscriptionResponse, offset: float) -> bool:
    return any(end > offset + 0.1 for _, end in result.speech_spans)


def _same_word(a: str, b: str) -> bool:
    strip = "".join(ch for ch in a.lower() if ch.isalnum())
    return bool(strip) and strip == "".join(ch for ch in b.lower() if ch.isalnum())
