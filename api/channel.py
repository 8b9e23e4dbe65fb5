"""What both pipelines of a session channel share: its audio, speech detection, the committed
point, endpointing, and how words become events."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from api.asr_client import WorkerError
from api.audio_track import AudioTrack
from api.events import PartialEvent, Span, Timing, TranscriptEvent, UtteranceEndEvent, WordOut
from api.vad_stream import CHUNK, StreamingVad
from asr.audio import SAMPLE_RATE
from asr.schemas import DecodeOptions, Priority, TranscriptionResponse, Word

if TYPE_CHECKING:
    from api.session import Session


class Channel:
    def __init__(
        self,
        session: Session,
        channel: int,
        offset: int = 0,
        context: int = 0,
        context_word_starts: Sequence[int] = (),
    ) -> None:
        """`offset`: where this channel's timeline starts (absolute samples). `context`: samples
        the client sends before it, heard by the model ahead of the first window but never
        transcribed (the tail of a session the gateway lost, continued by a new one), with the
        starts of the words in it."""
        self.session = session
        self.channel = channel
        settings = session.settings
        keep = max(settings.context_sec, settings.stream_buffer_max_sec) + 2.0
        begin = offset - context
        self.track = AudioTrack(channel, keep_sec=keep, start_offset=begin)
        self._context_until = offset
        # VAD chunks line up with the timeline's start; a partial chunk of context is skipped
        vad_start = offset - context // CHUNK * CHUNK
        self.vad = (
            StreamingVad(settings.vad_threshold, start=vad_start) if settings.vad_enabled else None
        )
        self.committed_offset = offset  # absolute samples: all before is final (or failed)
        self.commits = 0  # bumped by every transcript: a partial started before is stale
        self.windows = 0
        self.committed_text = ""
        self.last_partial_end = offset
        # where the last windows' words began: the context sent with a window starts at one
        starts = sorted(context_word_starts) or ([begin] if context else [])
        self._word_starts: deque[int] = deque(starts)
        self._last_word = ""
        self._utterance_end_sent = offset  # absolute sample of the last utterance_end
        self._wake = asyncio.Event()
        self.finishing = False

    # ---- audio in ------------------------------------------------------------------------

    def push(self, samples: np.ndarray, arrival: float) -> None:
        self.track.append(samples, arrival)
        if self.track.cursor < self._context_until:  # context is never a window of its own
            self.track.advance(min(self.track.received, self._context_until) - self.track.cursor)
        self._wake.set()

    def finish(self) -> None:
        self.finishing = True
        self._wake.set()

    def release(self) -> None:
        """The session is over: free the audio (see Session.release)."""
        self.track.release()
        if self.vad is not None:
            self.vad.release()

    async def wait_for_audio(self) -> None:
        await self._wake.wait()
        self._wake.clear()

    async def run(self) -> None:
        raise NotImplementedError

    # ---- speech ----------------------------------------------------------------------------

    async def update_vad(self) -> None:
        if self.vad is not None:
            await self.vad.update(self.track)

    def has_speech(self, start: int, end: int) -> bool:
        return self.vad is None or self.vad.speech_between(start, end)

    def endpoint(self) -> int | None:
        """Where the speaker stopped, once `utterance_end_ms` of silence followed: the absolute
        end of the speech, or None."""
        vad = self.vad
        if vad is None or vad.last_speech_end is None:
            return None
        if vad.last_speech_end <= self._utterance_end_sent:
            return None
        silence = self.session.settings.utterance_end_ms * SAMPLE_RATE // 1000
        return (
            vad.last_speech_end
            if vad.silence_after_speech(self.track.received) >= silence
            else None
        )

    def emit_utterance_end(self, speech_end: int) -> None:
        self._utterance_end_sent = speech_end
        self.session.emit(
            UtteranceEndEvent(end=round(speech_end / SAMPLE_RATE, 3), channel=self.channel)
        )

    # ---- decoding --------------------------------------------------------------------------

    async def transcribe(
        self, pcm: np.ndarray, options: DecodeOptions, priority: Priority = Priority.final
    ) -> TranscriptionResponse:
        """A final request that rides out a worker outage: while no worker answers, retry with
        backoff for up to `worker_outage_sec` (audio keeps buffering, up to its limit, and the
        socket is not read beyond that), then give up with the error."""
        asr = self.session.asr
        deadline = time.monotonic() + self.session.settings.worker_outage_sec
        delay = 0.25
        while True:
            try:
                return await asr.transcribe(pcm, options, priority)
            except WorkerError as exc:
                if (
                    not exc.retryable
                    or time.monotonic() + delay > deadline
                    or self.session.finished_hard
                ):
                    raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    def options(self, **overrides: object) -> DecodeOptions:
        config = self.session.config
        values: dict[str, object] = {
            "language": self.session.language,
            "beam_size": config.batch.beam_size,
            "best_of": config.batch.best_of,
            "temperature": 0.0,  # no fallback ladder: a window's cost stays predictable
            "initial_prompt": config.prompt,
            "hotwords": config.hotwords,
            "word_timestamps": True,
        }
        values.update(overrides)
        return DecodeOptions(**values)

    def context_start(self, since: int, context_sec: float) -> int:
        """Start of the audio sent before `since`: a word already sent, at most context_sec."""
        floor = max(since - int(context_sec * SAMPLE_RATE), self.track.base)
        while self._word_starts and self._word_starts[0] < floor:
            self._word_starts.popleft()
        start = self._word_starts[0] if self._word_starts else since
        return max(min(start, since) - SAMPLE_RATE // 10, self.track.base)

    # ---- events out ----------------------------------------------------------------------

    def emit_transcript(self, words: list[Word], language: str, span: Span, cut_at: float) -> None:
        out = [
            WordOut(word=w.word.strip(), start=w.start, end=w.end, probability=w.probability)
            for w in words
        ]
        text = "".join(w.word for w in words).strip()
        self.commits += 1
        self.session.emit(
            TranscriptEvent(
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
        )
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

    def emit_partial(self, text: str, start: int, end: int) -> None:
        self.last_partial_end = end
        self.session.emit(
            PartialEvent(text=text, start=round(start / SAMPLE_RATE, 3), channel=self.channel)
        )

    def same_as_last_word(self, word: str) -> bool:
        return _key(word) != "" and _key(word) == _key(self._last_word)


def _key(word: str) -> str:
    return "".join(ch for ch in word.lower() if ch.isalnum())
