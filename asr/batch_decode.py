"""Several windows, one model call: batched encoder inputs, optionally several windows packed
into one 30 s input.

Whisper's encoder always processes 30 s. On a GPU a batch of inputs costs little more than one;
on a CPU it costs the sum (measured: 0.41 s per input at batch 1, 0.44 s at 2 and 4), so there
the lever is packing: a gateway window is 5-10 s, so two or three windows (a little silence
between them) share one 30 s input and one encoder pass, and the words are handed back to their
windows by their timestamps.

Goes through the CTranslate2 model directly (`encode`, `generate`, `align`): faster-whisper's
own batching only splits one file. What this path does NOT do (requests that need it take
SpeechModel.transcribe): language detection, the temperature fallback ladder (temperature must
be pinned to 0.0), `vad_filter`, audio over 30 s, and faster-whisper's second seek pass: when
the decode ends inside a segment (no closing timestamp), faster-whisper decodes the rest again
(a second 30 s encoder pass, prompted with the first pass's text); here the unfinished tail is
kept as the last segment instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from asr.direct_pass import N_FRAMES, DirectPass, plan_pass
from asr.stage_clock import StageClock
from asr.word_timing import add_words, text_tokens
from contracts.worker import DecodeOptions

FRAMES_PER_SEC = 100
NO_SPEECH_PROB = 0.6
LOW_LOGPROB = -1.0
MAX_GAP_DRIFT_SEC = 0.5  # a packed word may sit this far outside its window
MIN_PACKED_COVERAGE = 0.5  # of a packed window's speech its words must cover, else redone
WORD_REACH_SEC = 0.3  # speech this close to a word counts as covered

__all__ = ["N_FRAMES", "BatchDecoder", "RawSegment", "RawWord", "coverage"]


@dataclass
class RawWord:
    word: str
    start: float
    end: float
    probability: float


@dataclass
class RawSegment:
    """Duck-types faster-whisper's Segment for asr.model's filters."""

    start: float
    end: float
    text: str
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float
    words: list[RawWord] = field(default_factory=list)


class BatchDecoder:
    def __init__(
        self,
        model: Any,
        pack: bool,
        gap_sec: float,
        max_per_input: int,
        gap_fill: str = "floor",
        clock: StageClock | None = None,
    ) -> None:
        self.model = model  # faster_whisper.WhisperModel
        self.direct = DirectPass(model, clock)
        self.pack = pack
        self.gap = round(gap_sec * FRAMES_PER_SEC)
        self.max_per_input = max_per_input
        self.gap_fill = gap_fill  # "floor": like digital silence; "pad": like trailing padding
        self.redone = 0  # packed windows decoded again alone
        self.on_redo: Callable[[int], None] | None = None  # a metric

    def decode(
        self,
        audios: list[np.ndarray],
        options: DecodeOptions,
        speech: list[list[tuple[float, float]]] | None = None,
    ) -> list[list[RawSegment]]:
        """Segments of each audio (<= 30 s each), times in seconds of that audio. `speech`
        (VAD spans per audio) lets a packed window whose words miss most of its speech (whisper
        sometimes stops at the silence between windows) be decoded again on its own."""
        out, packed = self._decode(audios, options, self.pack)
        if speech is not None:
            redo = [i for i in packed if coverage(out[i], speech[i]) < MIN_PACKED_COVERAGE]
            if redo:
                again, _ = self._decode([audios[i] for i in redo], options, pack=False)
                for i, segments in zip(redo, again, strict=True):
                    out[i] = segments
            self.redone += len(redo)
            if redo and self.on_redo is not None:
                self.on_redo(len(redo))
        return out

    def _decode(
        self, audios: list[np.ndarray], options: DecodeOptions, pack: bool
    ) -> tuple[list[list[RawSegment]], list[int]]:
        """(segments per audio, indices of the audios that shared an input): one feature pass,
        one encode, one generate and one align for the whole batch (asr/direct_pass.py)."""
        if options.language is None or options.temperature != 0.0 or options.vad_filter:
            raise ValueError("the batched path needs a language and temperature 0.0, no vad")
        direct = self.direct
        feats, frames = direct.features(audios)
        # packed windows are split by word times, so packing needs word timestamps
        pack = pack and options.word_timestamps
        plan = plan_pass(frames, pack, self.gap, self.max_per_input)
        encoded = direct.encode(direct.inputs(plan, feats, self.gap_fill))
        results = direct.generate(encoded, direct.prompts(plan, options), options)
        tokenizer = direct.tokenizer(options.language)
        ends = [plan.input_end(k) for k in range(plan.inputs)]
        decoded = [
            self._split(tokenizer, result, end) for result, end in zip(results, ends, strict=True)
        ]
        if options.word_timestamps:
            every_subs = [item for item, _ in decoded]
            tokens = text_tokens(tokenizer, every_subs)
            alignments = direct.align(encoded, options.language, tokens, ends)
            add_words(tokenizer, every_subs, alignments)
        out: list[list[RawSegment]] = [[] for _ in audios]
        for k, (subs, scores) in enumerate(decoded):
            placed = plan.on_input(k)
            if len(placed) == 1:
                out[placed[0].window] = _segments(tokenizer, subs, scores)
            else:
                spans = {item.window: (item.offset, item.end) for item in placed}
                for index, segments in _windows(subs, scores, spans).items():
                    out[index] = segments
        return out, plan.shared

    def _split(self, tokenizer: Any, result: Any, end: int) -> tuple[list[dict[str, Any]], Scores]:
        """faster-whisper's split at timestamp pairs; an unfinished tail becomes a segment."""
        from faster_whisper.transcribe import get_compression_ratio

        tokens = list(result.sequences_ids[0])
        subs, seek, _ = self.model._split_segments_by_timestamps(
            tokenizer=tokenizer,
            tokens=tokens,
            time_offset=0.0,
            segment_size=end,
            segment_duration=end / FRAMES_PER_SEC,
            seek=0,
        )
        if seek < end:  # faster-whisper would decode from here again (the second seek pass)
            begin = tokenizer.timestamp_begin
            last = max(
                i for i in range(1, len(tokens)) if tokens[i] >= begin and tokens[i - 1] >= begin
            )
            tail = tokens[last:]
            if any(t < tokenizer.eot for t in tail):
                start = (tail[0] - begin) * 0.02
                subs.append({"seek": 0, "start": start, "end": end / 100, "tokens": tail})
        avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1)
        text = tokenizer.decode(tokens).strip()
        scores = Scores(avg_logprob, result.no_speech_prob, get_compression_ratio(text))
        for sub in subs:
            sub["text"] = tokenizer.decode(sub["tokens"])
        return subs, scores


@dataclass(frozen=True)
class Scores:
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float


def _segments(tokenizer: Any, subs: list[dict[str, Any]], scores: Scores) -> list[RawSegment]:
    """One window alone on its input: faster-whisper's segments, its silence rule included."""
    if scores.no_speech_prob > NO_SPEECH_PROB and scores.avg_logprob <= LOW_LOGPROB:
        return []  # faster-whisper skips the whole input
    return [
        RawSegment(
            start=sub["start"],
            end=sub["end"],
            text=sub["text"],
            avg_logprob=scores.avg_logprob,
            no_speech_prob=scores.no_speech_prob,
            compression_ratio=scores.compression_ratio,
            words=[RawWord(**w) for w in sub.get("words", [])],
        )
        for sub in subs
        if sub["start"] != sub["end"] and sub["text"].strip()
    ]


def _windows(
    subs: list[dict[str, Any]], scores: Scores, spans: dict[int, tuple[int, int]]
) -> dict[int, list[RawSegment]]:
    """Hand each word of a packed input to the window nearest its midpoint (words further
    than MAX_GAP_DRIFT_SEC from every window were heard in the silence between: dropped), on
    that window's own timeline; a segment spanning two windows is cut between them."""
    from faster_whisper.transcribe import get_compression_ratio

    bounds = {i: (a / FRAMES_PER_SEC, b / FRAMES_PER_SEC) for i, (a, b) in spans.items()}
    out: dict[int, list[RawSegment]] = {i: [] for i in spans}
    for sub in subs:
        pieces: dict[int, list[RawWord]] = {}
        for w in sub.get("words", []):
            middle = (w["start"] + w["end"]) / 2
            index, distance = min(
                ((i, max(a - middle, middle - b, 0.0)) for i, (a, b) in bounds.items()),
                key=lambda pair: pair[1],
            )
            if distance > MAX_GAP_DRIFT_SEC:
                continue
            a, b = bounds[index]
            pieces.setdefault(index, []).append(
                RawWord(
                    word=w["word"],
                    start=round(min(max(w["start"] - a, 0.0), b - a), 3),
                    end=round(min(max(w["end"] - a, 0.0), b - a), 3),
                    probability=w["probability"],
                )
            )
        for index, words in pieces.items():
            text = "".join(w.word for w in words)
            if not text.strip():
                continue
            out[index].append(
                RawSegment(
                    start=words[0].start,
                    end=words[-1].end,
                    text=text,
                    avg_logprob=scores.avg_logprob,
                    no_speech_prob=scores.no_speech_prob,
                    compression_ratio=get_compression_ratio(text.strip()),
                    words=words,
                )
            )
    return out


def coverage(segments: list[RawSegment], speech: list[tuple[float, float]]) -> float:
    """Fraction of the speech time within WORD_REACH_SEC of some word (1.0 without speech)."""
    total = sum(b - a for a, b in speech)
    if total <= 0:
        return 1.0
    merged: list[list[float]] = []
    for start, end in sorted(
        (w.start - WORD_REACH_SEC, w.end + WORD_REACH_SEC) for s in segments for w in s.words
    ):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    covered = sum(max(0.0, min(b, we) - max(a, ws)) for a, b in speech for ws, we in merged)
    return min(1.0, covered / total)
