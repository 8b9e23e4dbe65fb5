"""A session's insights: speech and word figures accumulated as audio and transcripts arrive,
an `insights` event every `insights_interval_sec` and a final one before `end`.

Everything runs in the tracker's own task: the pipelines only hand it samples and transcripts
(cheap appends), so a slow or failing provider can delay an insights event by at most
`insights_timeout_sec` and never a transcript.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import numpy as np
from pydantic import BaseModel

from api.insights.base import InsightsInput, InsightsProvider, ProviderError, ProviderResult
from api.insights.speech import SpeechMeter
from api.insights.text import KeywordCounter
from api.vad_stream import StreamingVad
from contracts.audio import SAMPLE_RATE
from contracts.events import ChannelInsights, InsightsEvent, TranscriptEvent
from contracts.logs import get_logger

log = get_logger("api.insights")

MIN_SPEECH_SEC = 1.0  # words per minute over less speech than this says nothing

Emit = Callable[[BaseModel], None]
LanguageOf = Callable[[], str | None]  # the session's language (None until known)


class InsightsTracker:
    def __init__(
        self,
        session_id: str,
        channels: int,
        provider: InsightsProvider,
        emit: Emit,
        language: LanguageOf,
        interval_sec: float = 5.0,
        timeout_sec: float = 10.0,
        max_keywords: int = 8,
        timeline_offset: int = 0,
        audio_start: int | None = None,
    ) -> None:
        self.session_id = session_id
        self.provider = provider
        self.meters = [
            SpeechMeter(origin=timeline_offset, audio_start=audio_start) for _ in range(channels)
        ]
        self.words = [0] * channels
        # per channel: samples (from the session's first) up to the last transcribed word
        self._covered = [0] * channels
        self._offset = timeline_offset
        self.interval_sec = interval_sec
        self.timeout_sec = timeout_sec
        self.max_keywords = max_keywords
        self._emit = emit
        self._language = language
        self._keywords = KeywordCounter()
        self._turns: list[tuple[int, str]] = []
        self._text_language: str | None = None  # of the latest transcript
        self._revision = 0  # bumped by every transcript: the provider's answer is stale
        self._result: ProviderResult | None = None
        self._result_revision = -1
        self._failing = False
        self._task: asyncio.Task[None] | None = None
        self._done = False

    # ---- fed by the session (synchronous, cheap) ---------------------------------------------

    def listen(self, vads: Sequence[StreamingVad | None]) -> None:
        """Take speech probabilities from the channels' VADs (scored once, for everyone)."""
        for meter, vad in zip(self.meters, vads, strict=True):
            if vad is not None:
                vad.listeners.append(meter.observe)

    def push(self, channels: Sequence[np.ndarray]) -> None:
        for meter, samples in zip(self.meters, channels, strict=True):
            meter.push(samples)

    def add_transcript(self, event: TranscriptEvent) -> None:
        if not event.text:
            return
        self.words[event.channel] += len(event.words)
        end = round(event.end * SAMPLE_RATE) - self._offset
        self._covered[event.channel] = max(self._covered[event.channel], end)
        self._keywords.add(event.text)
        self._turns.append((event.channel, event.text))
        self._text_language = event.language
        self._revision += 1

    # ---- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"{self.session_id}-insights")

    async def finish(self) -> InsightsEvent | None:
        """The final event (all audio and transcripts are in), sent before `end`."""
        if self._done:
            return None
        await self._stop()
        self._done = True
        try:
            return await self._send(final=True)
        except Exception:  # a bug here must not cost the client its `end`
            log.exception("insights_failed", session_id=self.session_id)
            return None
        finally:
            await self.provider.aclose()

    async def cancel(self) -> None:
        if not self._done:
            self._done = True
            await self._stop()
            await self.provider.aclose()

    async def _stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            due += self.interval_sec
            now = loop.time()
            if due < now:  # a slow provider call: skip the ticks it covered, keep the cadence
                due += ((now - due) // self.interval_sec + 1) * self.interval_sec
            await asyncio.sleep(due - now)
            try:
                await self._send(final=False)
            except Exception:  # a bug: skip this event, keep the session and the next ones
                log.exception("insights_failed", session_id=self.session_id)

    # ---- one event ---------------------------------------------------------------------------

    @property
    def language(self) -> str | None:
        return self._language() or self._text_language

    def figures(self, final: bool = False) -> dict[str, object]:
        """The local figures: speaking time, pace, silence, per channel when stereo.

        Speaking time runs ahead of the transcript (a window is still at the worker), so the
        pace is words over the speech up to the last transcribed word; at the end, all of it."""
        audio = max(m.audio_sec for m in self.meters)
        paced = [
            m.speech_sec if final else m.speech_until(covered) / SAMPLE_RATE
            for m, covered in zip(self.meters, self._covered, strict=True)
        ]
        per_channel = [
            ChannelInsights(
                channel=index,
                speaking_sec=round(meter.speech_sec, 2),
                word_count=self.words[index],
                words_per_minute=_wpm(self.words[index], paced[index]),
                silence_ratio=_silence(meter.speech_sec, audio),
            )
            for index, meter in enumerate(self.meters)
        ]
        speech = sum(m.speech_sec for m in self.meters)
        words = sum(self.words)
        return {
            "audio_sec": round(audio, 2),
            "speaking_sec": round(speech, 2),
            "word_count": words,
            "words_per_minute": _wpm(words, sum(paced)),
            # stereo: time nobody spoke, when the two do not talk at once
            "silence_ratio": _silence(speech, audio),
            "channels": per_channel if len(self.meters) > 1 else None,
        }

    async def _send(self, final: bool) -> InsightsEvent:
        if final:
            for meter in self.meters:
                meter.finish()
        language = self.language
        keywords = self._keywords.top(self.max_keywords, language)
        data = InsightsInput(
            transcript=" ".join(text for _, text in self._turns),
            language=language,
            keywords=keywords,
            turns=list(self._turns),
            channels=len(self.meters),
            final=final,
        )
        error = await self._analyse(data)
        result = self._result
        event = InsightsEvent(
            provider=self.provider.name,
            final=final,
            error=error,
            language=language,
            keywords=(result.keywords if result and result.keywords else keywords),
            summary=result.summary if result else "",
            **self.figures(final),
        )
        self._emit(event)
        return event

    async def _analyse(self, data: InsightsInput) -> str | None:
        """Ask the provider when the text changed; the error to report, or None."""
        if self._result is not None and self._result_revision == self._revision:
            return None
        revision = self._revision
        name = self.provider.name
        try:
            self._result = await asyncio.wait_for(self.provider.analyse(data), self.timeout_sec)
            self._result_revision = revision
        except TimeoutError:
            error = f"{name}: timed out after {self.timeout_sec:g} s"
        except ProviderError as exc:
            error = str(exc)
        except Exception as exc:  # a provider bug must not end the session
            log.exception("insights_provider_bug", session_id=self.session_id, provider=name)
            error = f"{name}: failed ({type(exc).__name__})"
        else:
            if self._failing:
                log.info("insights_provider_recovered", session_id=self.session_id, provider=name)
            self._failing = False
            return None
        if not self._failing:  # once per outage, not every interval
            log.warning(
                "insights_provider_failed", session_id=self.session_id, provider=name, error=error
            )
        self._failing = True
        return error


def _wpm(words: int, speech_sec: float) -> float | None:
    return round(words / (speech_sec / 60), 1) if speech_sec >= MIN_SPEECH_SEC else None


def _silence(speech_sec: float, audio_sec: float) -> float | None:
    return round(1 - min(1.0, speech_sec / audio_sec), 3) if audio_sec > 0 else None
