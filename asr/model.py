"""The model wrapper: load, warm up, transcribe one audio window with the project's safeguards.

Safeguards against whisper's habit of inventing text ("Obrigado.", subtitle credits, Welsh on
silence): the speech spans (the gateway's VAD, sent with the request, or the worker's own for a
request without them) decide whether there is speech at all; language detection listens to
speech only and chooses among the allowed languages; segments outside speech are dropped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from asr import window_decode
from asr.batch_decode import BatchDecoder
from asr.config import WorkerSettings
from asr.draft import draft_text
from asr.embedded_model import assemble, verify
from asr.stage_clock import StageClock, shares, timed_model
from asr.vad import SpeechSpan, overlaps_speech, speech_audio, speech_spans, total_speech
from contracts.audio import SAMPLE_RATE
from contracts.logs import get_logger
from contracts.worker import DecodeOptions, Segment, Timing, TranscriptionResponse, Word

log = get_logger(__name__)

# whisper's own rule for "this segment is silence": both must hold
NO_SPEECH_PROB = 0.6
LOW_LOGPROB = -1.0
# a looping decode ("Acoma. Acoma. Acoma.") compresses far better than speech does
MAX_COMPRESSION_RATIO = 2.4


class SpeechModel:
    """One faster-whisper model shared by the worker's threads (CTranslate2 is thread-safe)."""

    def __init__(self, settings: WorkerSettings) -> None:
        from faster_whisper import WhisperModel

        self.settings = settings
        self.languages = settings.languages
        path = settings.model_path
        if settings.is_embedded:
            # no-op when already built; never touches the network; refuses altered files
            verify(assemble(settings.embedded_model_dir))
        started = time.perf_counter()
        self.model = WhisperModel(
            path,
            device=settings.resolved_device,
            device_index=settings.device_index,
            compute_type=settings.resolved_compute_type,
            cpu_threads=settings.resolved_cpu_threads,
            num_workers=settings.concurrency + (1 if settings.partial_lane else 0),
            download_root=str(settings.models_dir),
        )
        # stage times per request (features, encoder, decoder, align) without changing a call
        self.clock = StageClock()
        timed_model(self.model, self.clock)
        # (path, inputs) per model call: the worker's metrics count what reached the model
        self.on_call: Callable[[str, int], None] | None = None
        self.batch_decoder = BatchDecoder(
            self.model,
            pack=settings.pack,
            gap_sec=settings.pack_gap_sec,
            max_per_input=settings.pack_max_windows,
            clock=self.clock,
        )
        log.info(
            "model_loaded",
            model=settings.model,
            path=path,
            device=settings.resolved_device,
            compute_type=settings.resolved_compute_type,
            cpu_threads=settings.resolved_cpu_threads,
            seconds=round(time.perf_counter() - started, 3),
        )

    def warm_up(self) -> None:
        """Run encoder and decoder once so the first real request does not pay for it."""
        t = np.arange(2 * SAMPLE_RATE) / SAMPLE_RATE
        audio = (0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
        segments, _ = self.model.transcribe(
            audio,
            language=self.languages[0],
            beam_size=1,
            temperature=0.0,
            max_new_tokens=8,
            word_timestamps=True,
        )
        for _ in segments:
            pass

    def _called(self, path: str, inputs: int) -> None:
        if self.on_call is not None:
            self.on_call(path, inputs)

    def speech(self, audio: np.ndarray, given: list[SpeechSpan] | None) -> list[SpeechSpan]:
        """The request's speech spans, or (none sent) the worker's own VAD's."""
        if given is not None:
            return given
        return speech_spans(audio, threshold=self.settings.vad_threshold)

    def transcribe(
        self, audio: np.ndarray, options: DecodeOptions, spans: list[SpeechSpan] | None = None
    ) -> TranscriptionResponse:
        started = time.perf_counter()
        self.clock.reset()
        duration = audio.size / SAMPLE_RATE
        spans = self.speech(audio, spans)
        if not spans:
            return self._empty(options, duration, started)
        language, probability = self._language(audio, spans, options.language)
        if window_decode.applies(options.model_copy(update={"language": language}), audio.size):
            self._called("window", 1)
            chosen = options.model_copy(update={"language": language})
            direct = self.batch_decoder.direct
            raw = window_decode.decode_windows(direct, [audio], [chosen], [spans])[0]
            result = _response(raw, spans, duration, language, probability, options, started)
            return self._timed(self._counted(result), 1)
        self._called("transcribe", 1)
        raw_segments, _info = self.model.transcribe(
            audio,
            language=language,
            beam_size=options.beam_size,
            best_of=options.best_of,
            temperature=_temperatures(options.temperature),
            initial_prompt=options.initial_prompt or None,
            hotwords=options.hotwords or None,
            vad_filter=options.vad_filter,
            word_timestamps=options.word_timestamps,
            task=options.task,
            no_speech_threshold=NO_SPEECH_PROB,
            log_prob_threshold=LOW_LOGPROB,
        )
        result = _response(raw_segments, spans, duration, language, probability, options, started)
        return self._timed(self._counted(result), 1)

    def _timed(self, result: TranscriptionResponse, items: int) -> TranscriptionResponse:
        """Set the stage shares of a request whose call served `items` windows."""
        for stage, ms in shares(self.clock.read(), items).items():
            setattr(result.timing, f"{stage}_ms", ms)
        return result

    def transcribe_batch(
        self,
        audios: list[np.ndarray],
        options: list[DecodeOptions],
        given: list[list[SpeechSpan] | None] | None = None,
    ) -> list[TranscriptionResponse | Exception]:
        """Windows whose options differ at most in their prefix and prompt (the batcher's key:
        language given, temperature 0.0) in one model call, with transcribe()'s safeguards;
        live windows (`encoder_pad_sec`) through asr/window_decode.py, others through
        asr/batch_decode.py (what that path leaves out is said there). An input that fails on
        its own (its VAD) fails alone; a failing joint call raises (the batcher then retries
        one by one)."""
        started = time.perf_counter()
        self.clock.reset()
        out: list[TranscriptionResponse | Exception] = []
        spans: dict[int, list[SpeechSpan]] = {}
        for i, audio in enumerate(audios):
            try:
                found = self.speech(audio, given[i] if given is not None else None)
            except Exception as exc:
                out.append(exc)
                continue
            out.append(self._empty(options[i], audio.size / SAMPLE_RATE, started))
            if found:
                spans[i] = found
        if spans:
            todo = list(spans)
            first = options[todo[0]]
            if first.encoder_pad_sec is not None:
                self._called("window", len(todo))
                raw = window_decode.decode_windows(
                    self.batch_decoder.direct,
                    [audios[i] for i in todo],
                    [options[i] for i in todo],
                    [spans[i] for i in todo],
                )
            else:
                self._called("batch", len(todo))
                raw = self.batch_decoder.decode(
                    [audios[i] for i in todo],
                    first,
                    [[(s.start, s.end) for s in spans[i]] for i in todo],
                )
            language = first.language or self.languages[0]
            for i, segments in zip(todo, raw, strict=True):
                duration = audios[i].size / SAMPLE_RATE
                response = _response(
                    segments, spans[i], duration, language, 1.0, options[i], started
                )
                out[i] = self._timed(self._counted(response), len(todo))
        for result in out:
            if isinstance(result, TranscriptionResponse):
                result.timing.inference_ms = _ms_since(started)
        return out

    def draft(
        self, audio: np.ndarray, options: DecodeOptions, spans: list[SpeechSpan] | None = None
    ) -> TranscriptionResponse:
        """The cheap pass for partials (asr/draft.py): text only, no word timestamps."""
        started = time.perf_counter()
        self.clock.reset()
        duration = audio.size / SAMPLE_RATE
        spans = self.speech(audio, spans)
        if not spans:
            return self._empty(options, duration, started)
        self._called("draft", 1)
        text, language = draft_text(
            self.model, audio, options.language, self.languages, options.prefix
        )
        segments = (
            [
                Segment(
                    id=0,
                    start=0.0,
                    end=round(duration, 3),
                    text=text,
                    avg_logprob=0.0,
                    no_speech_prob=0.0,
                )
            ]
            if text
            else []
        )
        result = TranscriptionResponse(
            text=text,
            language=language,
            language_probability=0.0,
            duration_sec=duration,
            speech_sec=round(total_speech(spans), 3),
            speech_spans=[(round(s.start, 3), round(s.end, 3)) for s in spans],
            segments=segments,
            timing=Timing(inference_ms=_ms_since(started)),
        )
        return self._timed(result, 1)

    def _counted(self, result: TranscriptionResponse) -> TranscriptionResponse:
        """The text's tokens (what OpenAI's API reports as output tokens)."""
        if result.text:
            encoded = self.model.hf_tokenizer.encode(f" {result.text}", add_special_tokens=False)
            result.text_tokens = len(encoded.ids)
        return result

    def _empty(
        self, options: DecodeOptions, duration: float, started: float
    ) -> TranscriptionResponse:
        """No speech at all: no model call, no invented words."""
        return TranscriptionResponse(
            text="",
            language=options.language or self.languages[0],
            language_probability=0.0,
            duration_sec=duration,
            speech_sec=0.0,
            segments=[],
            timing=Timing(inference_ms=_ms_since(started)),
        )

    def _language(
        self, audio: np.ndarray, spans: list[Any], requested: str | None
    ) -> tuple[str, float]:
        if requested:
            return requested, 1.0
        _, _, all_probs = self.model.detect_language(audio=speech_audio(audio, spans))
        allowed = [(lang, p) for lang, p in all_probs if lang in self.languages]
        if allowed:
            lang, prob = max(allowed, key=lambda item: item[1])
            if prob >= self.settings.language_detection_threshold:
                return lang, float(prob)
        # unsure: the deployment's first language is the honest default
        return self.languages[0], float(dict(all_probs).get(self.languages[0], 0.0))


def _response(
    raw_segments: Iterable[Any],
    spans: list[SpeechSpan],
    duration: float,
    language: str,
    probability: float,
    options: DecodeOptions,
    started: float,
) -> TranscriptionResponse:
    # with a pinned temperature there is no fallback to escape a loop: drop looping text
    drop_loops = options.temperature is not None
    segments = _kept_segments(raw_segments, spans, duration, drop_loops)
    return TranscriptionResponse(
        text=" ".join(s.text for s in segments).strip(),
        language=language,
        language_probability=probability,
        duration_sec=duration,
        speech_sec=round(total_speech(spans), 3),
        speech_spans=[(round(s.start, 3), round(s.end, 3)) for s in spans],
        segments=segments,
        timing=Timing(inference_ms=_ms_since(started)),
    )


def _temperatures(value: float | None) -> float | tuple[float, ...]:
    # None keeps faster-whisper's fallback ladder; an explicit value pins it
    return (0.0, 0.2, 0.4, 0.6, 0.8, 1.0) if value is None else value


def _kept_segments(
    raw: Iterable[Any], spans: list[Any], duration: float, drop_loops: bool
) -> list[Segment]:
    kept: list[Segment] = []
    for seg in raw:
        text = seg.text.strip()
        if not text:
            continue
        if drop_loops and seg.compression_ratio > MAX_COMPRESSION_RATIO:
            continue
        if seg.no_speech_prob > NO_SPEECH_PROB and seg.avg_logprob < LOW_LOGPROB:
            continue
        if not overlaps_speech(seg.start, seg.end, spans):
            continue
        words = [
            Word(
                word=w.word,
                start=round(min(max(w.start, 0.0), duration), 3),
                end=round(min(max(w.end, 0.0), duration), 3),
                probability=round(w.probability, 4),
            )
            for w in (seg.words or [])
        ]
        kept.append(
            Segment(
                id=len(kept),
                start=round(max(seg.start, 0.0), 3),
                end=round(min(seg.end, duration), 3),
                text=text,
                avg_logprob=round(seg.avg_logprob, 4),
                no_speech_prob=round(seg.no_speech_prob, 4),
                words=words,
            )
        )
    return kept


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
