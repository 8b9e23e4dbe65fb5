"""Streaming mode: a rolling buffer re-transcribed as audio arrives, LocalAgreement-2 commits.

After every `min_chunk_sec` of new audio the buffer is transcribed again; words two consecutive
hypotheses agree on are committed and sent as `transcript`, the rest as `partial`. When the
speaker pauses (`stream_commit_pause_ms`) or stops (`utterance_end_ms` of silence), the latest
hypothesis is final at once. The buffer is trimmed at committed sentence ends, and never grows
past `stream_buffer_max_sec`.

Where each pass ends is decided on the audio (the chunk grid, the pause, the endpoint), never
by how much had arrived when the previous pass came back, so the same audio gives the same
passes and the same text. Only when the pool is slower than real time does a pass jump to the
last whole chunk received (`behind` on its transcripts).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from api.core.channel import ChannelCore, pool_seconds
from api.core.local_agreement import HypothesisBuffer
from api.core.steps import Step, WindowRequest
from contracts.audio import SAMPLE_RATE
from contracts.words import kept_before_loop, shift_words
from contracts.worker import TranscriptionResponse, Word

SENTENCE_END = (".", "?", "!", "…")
FINAL_CONTEXT_SEC = 0.5  # audio kept in the buffer after a final pass


@dataclass
class Pass:
    kind: Literal["chunk", "pause", "endpoint", "end"]
    end: int
    final: bool
    endpoint: int | None = None  # the end of speech an utterance_end reports after this pass
    behind: bool = False
    cut_at: float = 0.0
    advanced: int = 0  # new audio since the previous pass


class StreamPolicy(ChannelCore):
    def __init__(self, *args: Any, **kwargs: Any) -> None:  # ChannelCore's arguments
        super().__init__(*args, **kwargs)
        chunk = self.config.min_chunk_sec  # build_session_config fills in the default
        assert chunk is not None, "a stream-mode config always has its cadence"
        self.min_chunk = int(chunk * SAMPLE_RATE)
        self.max_buffer = int(self.settings.stream_buffer_max_sec * SAMPLE_RATE)
        self.pause = self.settings.stream_commit_pause_ms * SAMPLE_RATE // 1000
        self.buffer_start = self.track.base  # absolute sample: any context is heard too
        self.hypotheses = HypothesisBuffer()
        self.hypotheses.committed_end = self.committed_offset / SAMPLE_RATE
        self.decoded_until = self.committed_offset
        self.paused_at = self.committed_offset
        self._pass: Pass | None = None

    # ---- deciding ------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return self._pass is not None

    @property
    def drained(self) -> bool:
        return self.decoded_until >= self.track.received

    def begin(self, decision: Pass, now: float) -> Step:
        decision.cut_at = now
        return self._start(decision, now)

    def decide(self) -> Pass | None:
        """The next pass: the earliest of the next chunk, a pause, an endpoint and the end."""
        horizon = self.horizon
        received = self.track.received
        while True:
            candidates: list[Pass] = []
            if self.speech is not None:
                speech_end = self.endpoint()
                if speech_end is not None:
                    end = speech_end + self.utterance_end
                    candidates.append(Pass("endpoint", end, True, speech_end))
                paused = self.speech.pause_after(self.paused_at, self.pause, horizon)
                if paused is not None:
                    candidates.append(Pass("pause", paused + self.pause, True))
            due = self.decoded_until + self.min_chunk
            if due <= horizon:
                behind = self.behind and horizon - self.decoded_until >= 2 * self.min_chunk
                if behind:  # catch up: every whole chunk received in one pass
                    chunks = (horizon - self.decoded_until) // self.min_chunk
                    due = self.decoded_until + chunks * self.min_chunk
                candidates.append(Pass("chunk", due, False, behind=behind))
            if self.finishing and received > self.decoded_until:
                candidates.append(Pass("end", received, True))
            if not candidates:
                return None
            chosen = min(candidates, key=lambda p: (p.end, not p.final))
            if chosen.kind == "pause":
                # a pause commits what precedes it, if that was not committed yet
                self.paused_at = chosen.end - self.pause
                if self.paused_at <= self.committed_offset:
                    continue
            chosen.end = max(chosen.end, self.decoded_until)
            chosen.advanced = chosen.end - self.decoded_until
            too_long = chosen.end - self._uncommitted_from >= self.max_buffer
            chosen.final = chosen.final or too_long or (self.finishing and chosen.end >= received)
            return chosen

    @property
    def context_sec(self) -> float:
        return self.settings.stream_context_sec

    @property
    def _uncommitted_from(self) -> int:
        """Where the audio a pass must still settle begins (it never grows past max_buffer)."""
        return self.committed_offset if self.settings.decoder_prefix else self.buffer_start

    # ---- one pass ------------------------------------------------------------------------

    def _start(self, decided: Pass, now: float) -> Step:
        self.decoded_until = max(self.decoded_until, decided.end)
        # the cursor only marks what was looked at; passes overlap
        self.track.advance(decided.end - self.track.cursor)
        if not self.has_speech(self.committed_offset, decided.end):
            step = Step()
            if decided.final or decided.end - self._uncommitted_from > self.max_buffer:
                self.hypotheses.flush_all()
                step = self._committed_through(decided.end)
            return self._after_pass(step, decided)
        self.windows += 1
        self.meter.window_sent("final")
        self._pass = decided
        if self.settings.decoder_prefix:
            # the words already committed in the last stream_context_sec are heard again as
            # the decoder's forced prefix: it generates only what follows them
            start = self.context_start(self.committed_offset, self.context_sec)
            prefix = self.prefix(start, decided.end)
        else:
            start, prefix = self.buffer_start, None
        options = self.options(
            initial_prompt=self._prompt(),
            prefix=prefix,
            encoder_pad_sec=self.settings.stream_encoder_pad_sec,
        )
        return Step(request=self.request("pass", start, start, decided.end, options))

    def on_response(
        self, request: WindowRequest, result: TranscriptionResponse, now: float
    ) -> Step:
        decided = self._pass
        assert decided is not None
        self._pass = None
        self.ledger.observe_language(result)
        words = shift_words(
            (w for seg in result.segments for w in seg.words), request.start / SAMPLE_RATE
        )
        words = words[: kept_before_loop(request.options.prefix, [w.word for w in words])]
        self.hypotheses.insert(words, after_committed=request.options.prefix is not None)
        lookahead = self.settings.stream_lookahead_sec
        settled = decided.end / SAMPLE_RATE - lookahead if lookahead > 0 else None
        committed = self.hypotheses.flush_all() if decided.final else self.hypotheses.flush(settled)
        step = Step()
        if committed:
            span = self.span(request.start, decided.end)
            step.events.append(
                self.transcript_event(
                    committed, result.language, span, decided.cut_at, now, decided.behind
                )
            )
        pending = self.hypotheses.pending
        self.meter.window_done(now - decided.cut_at)
        self.observe_load(decided.advanced, pool_seconds(result))
        if decided.final:
            step = step.then(self._committed_through(decided.end))
            keep = int(FINAL_CONTEXT_SEC * SAMPLE_RATE)
            self.buffer_start = max(self.buffer_start, decided.end - keep)
        else:
            moved = int(self.hypotheses.committed_end * SAMPLE_RATE)
            step = step.then(self._committed_through(moved))
            self._trim(committed)
            if pending:
                text = "".join(w.word for w in pending).strip()
                start = int(pending[0].start * SAMPLE_RATE)
                step.events.append(self.partial_event(text, start, decided.end))
        return self._after_pass(step, decided)

    def on_failure(self, request: WindowRequest, message: str, now: float) -> Step:
        decided = self._pass
        assert decided is not None
        self._pass = None
        span = self.span(request.start, decided.end)
        step = Step(list(self.failure_events(span, f"stream pass failed: {message}")))
        step = step.then(self._committed_through(decided.end))
        self.buffer_start = decided.end
        return self._after_pass(step, decided)

    def _after_pass(self, step: Step, decided: Pass) -> Step:
        if decided.endpoint is not None:
            step.events.append(self.utterance_end_event(decided.endpoint))
        self.track.forget_arrivals_before(self.committed_offset)
        return step

    def _committed_through(self, offset: int) -> Step:
        since = self.committed_offset
        self.committed_offset = max(self.committed_offset, offset)
        self.meter.transcribed(max(0, self.committed_offset - since) / SAMPLE_RATE)
        return Step(committed=True)

    def _trim(self, committed: list[Word]) -> None:
        """Start the buffer after the last committed sentence end."""
        ends = [w for w in committed if w.word.strip().endswith(SENTENCE_END)]
        if ends:
            self.buffer_start = max(self.buffer_start, int(ends[-1].end * SAMPLE_RATE))

    def _prompt(self) -> str | None:
        parts = [self.config.prompt or ""]
        if self.settings.stream_prompt and self.committed_text:
            parts.append(self.committed_text[-200:])
        prompt = " ".join(p for p in parts if p).strip()
        return prompt or None
