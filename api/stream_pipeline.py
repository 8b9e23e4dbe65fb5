"""Streaming mode: a rolling buffer re-transcribed as audio arrives, LocalAgreement-2 commits.

Every `min_chunk_sec` of new audio (or as soon as the previous pass is done, when the worker is
slower than that) the buffer is transcribed again; words two consecutive hypotheses agree on
are committed and sent as `transcript`, the rest as `partial`. When the speaker stops
(`utterance_end_ms` of silence), the latest hypothesis is final at once. The buffer is trimmed at
committed sentence ends, and never grows past `stream_buffer_max_sec`.
"""

from __future__ import annotations

import time
from typing import Any

from api.asr_client import WorkerError
from api.channel import Channel
from api.events import ErrorCode, ErrorEvent, Span
from api.local_agreement import HypothesisBuffer
from api.pipeline import absolute_words
from asr.audio import SAMPLE_RATE
from asr.schemas import Word
from asr.textguard import repeated_tail_start

SENTENCE_END = (".", "?", "!", "…")


class StreamPipeline(Channel):
    def __init__(self, session, channel: int, offset: int = 0, *context: Any) -> None:  # type: ignore[no-untyped-def]
        super().__init__(session, channel, offset, *context)  # context: see Channel
        settings = session.settings
        chunk = session.config.min_chunk_sec or settings.stream_min_chunk_sec
        self.min_chunk = int(chunk * SAMPLE_RATE)
        self.max_buffer = int(settings.stream_buffer_max_sec * SAMPLE_RATE)
        self.buffer_start = self.track.base  # absolute sample: any context is heard too
        self.hypotheses = HypothesisBuffer()
        self.hypotheses.committed_end = offset / SAMPLE_RATE
        self._decoded_until = offset
        self._paused_at = offset

    async def run(self) -> None:
        while True:
            await self.update_vad()
            received = self.track.received
            speech_end = self.endpoint()
            paused = self._paused_since_last_pass()
            due = received - self._decoded_until >= self.min_chunk
            if not (
                due
                or paused
                or speech_end is not None
                or (self.finishing and received > self._decoded_until)
            ):
                if self.finishing:
                    return
                await self.wait_for_audio()
                continue
            # a buffer at its limit is finalised rather than trimmed: nothing heard is dropped
            too_long = (
                received - self.buffer_start >= self.max_buffer or self.session.at_buffer_limit
            )
            final = self.finishing or speech_end is not None or too_long or paused
            await self._pass(received, final)
            if speech_end is not None:
                self.emit_utterance_end(speech_end)
            self.track.forget_arrivals_before(self.committed_offset)

    async def _pass(self, received: int, final: bool) -> None:
        cut_at = time.monotonic()
        self._decoded_until = received
        # the cursor only marks what was looked at; windows here overlap
        self.track.advance(self.track.pending)
        start = self.buffer_start
        if not self.has_speech(self.committed_offset, received):
            if final or received - start > self.max_buffer:
                self.hypotheses.flush_all()
                self._committed_through(received)
            return
        session = self.session
        self.windows += 1
        session.metrics.windows.labels("final").inc()
        span = Span(start=start / SAMPLE_RATE, end=received / SAMPLE_RATE, channel=self.channel)
        prompt = self._prompt()
        try:
            result = await self.transcribe(
                self.track.audio(start, received), self.options(initial_prompt=prompt)
            )
        except WorkerError as exc:
            session.failed_spans.append(span)
            session.metrics.errors.labels("worker_failed").inc()
            session.emit(
                ErrorEvent(
                    code=ErrorCode.worker_failed, message=f"stream pass failed: {exc}", span=span
                )
            )
            self._committed_through(received)
            self.buffer_start = received
            return
        session.observe_language(result)
        words = absolute_words(result, start / SAMPLE_RATE)
        words = words[: repeated_tail_start([w.word for w in words])]
        self.hypotheses.insert(words)
        lookahead = self.session.settings.stream_lookahead_sec
        settled = received / SAMPLE_RATE - lookahead if lookahead > 0 else None
        committed = self.hypotheses.flush_all() if final else self.hypotheses.flush(settled)
        if committed:
            self.emit_transcript(committed, result.language, span, cut_at)
        pending = self.hypotheses.pending
        if final:
            self._committed_through(received)
            self.buffer_start = max(self.buffer_start, received - SAMPLE_RATE // 2)
        else:
            self.committed_offset = max(
                self.committed_offset, int(self.hypotheses.committed_end * SAMPLE_RATE)
            )
            self._trim(committed, received)
            session.metrics.batch_duration.observe(time.monotonic() - cut_at)
            session.send_ack()
        if pending and not final:
            text = "".join(w.word for w in pending).strip()
            self.emit_partial(text, int(pending[0].start * SAMPLE_RATE), received)

    def _paused_since_last_pass(self) -> bool:
        """The speaker paused (`stream_commit_pause_ms` of silence after speech) and the last
        pass did not see it: the words before a pause are heard with the silence after them,
        which is when whisper is surest of them, so the hypothesis is committed then."""
        vad = self.vad
        pause = self.session.settings.stream_commit_pause_ms * SAMPLE_RATE // 1000
        if vad is None or vad.last_speech_end is None or vad.last_speech_end <= self._paused_at:
            return False
        if vad.silence_after_speech(self.track.received) < pause:
            return False
        self._paused_at = vad.last_speech_end
        return vad.last_speech_end > self.committed_offset

    def _committed_through(self, offset: int) -> None:
        since = self.committed_offset
        self.committed_offset = max(self.committed_offset, offset)
        self.session.metrics.audio.labels("transcribed").inc(
            max(0, self.committed_offset - since) / SAMPLE_RATE
        )
        self.session.send_ack()

    def _trim(self, committed: list[Word], received: int) -> None:
        """Start the buffer after the last committed sentence end."""
        ends = [w for w in committed if w.word.strip().endswith(SENTENCE_END)]
        if ends:
            self.buffer_start = max(self.buffer_start, int(ends[-1].end * SAMPLE_RATE))

    def _prompt(self) -> str | None:
        parts = [self.session.config.prompt or ""]
        if self.session.settings.stream_prompt and self.committed_text:
            parts.append(self.committed_text[-200:])
        prompt = " ".join(p for p in parts if p).strip()
        return prompt or None
