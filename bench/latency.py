"""Per-word latency, exactly as ARCHITECTURE.md defines it.

Audio leaves on a fixed schedule: frame k (of `frame_sec`) is sent at stream start +
(k+1)·frame_sec. A reference word (from a word-timestamped whole-file transcription of the same
clip) is due at the send time of the frame holding its end. Its latency is the arrival time of
the event that first shows it (`partial` or `transcript`: "first sight") or finalises it
(`transcript`: "final"), minus that send time.

Which emitted word is which reference word is decided by an edit-distance alignment of
normalised words, exact matches only:
- final: all transcripts (the committed text) against the whole reference;
- first sight: at every partial/transcript event, committed text + current partial against the
  reference words that can have been heard by then (start before the audio sent so far plus
  `lookahead_sec`); without that bound a partial's "de" would align to any later "de" of the
  clip and look seen before it was spoken.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bench.scoring import exact_matches, tokens

SAMPLE_RATE = 16_000
LOOKAHEAD_SEC = 1.0  # whole-file word times are off by a few hundred ms at worst


@dataclass(frozen=True)
class RefWord:
    token: str  # one normalised word
    start: float  # seconds on the streamed audio's timeline
    end: float


@dataclass(frozen=True)
class TimedEvent:
    t: float  # arrival, seconds after stream start
    kind: str  # "partial" | "transcript"
    text: str


@dataclass
class WordLatencies:
    """Per reference word: latency (seconds) or None when no emitted word matched it."""

    reference: list[RefWord]
    final: list[float | None]
    first: list[float | None]
    seen_only_in_partials: int = 0  # matched at some event, but not in the final text

    @property
    def matched_fraction(self) -> float:
        if not self.reference:
            return 0.0
        return sum(v is not None for v in self.final) / len(self.reference)

    def final_values(self) -> list[float]:
        return [v for v in self.final if v is not None]

    def first_values(self) -> list[float]:
        return [v for v in self.first if v is not None]

    def first_word_latency(self) -> float | None:
        """First sight of the earliest reference word that was matched."""
        return next((v for v in self.first if v is not None), None)


def reference_words(
    segments: Iterable[dict[str, Any]], offset: float = 0.0, duration: float | None = None
) -> list[RefWord]:
    """Normalised words of a worker response's segments[].words[], shifted by -offset; only
    words lying within [offset, offset + duration] are kept (for sessions that stream a slice).
    A whisper word that normalises to several ("a.c.") gives several, with the same times."""
    out: list[RefWord] = []
    for seg in segments:
        for word in seg.get("words", []):
            start, end = float(word["start"]) - offset, float(word["end"]) - offset
            if start < -0.05 or (duration is not None and end > duration + 0.05):
                continue
            out.extend(RefWord(tok, max(start, 0.0), max(end, 0.0)) for tok in tokens(word["word"]))
    return out


def frame_index(end_sec: float, frame_sec: float, n_frames: int) -> int:
    """The frame holding the last sample of a word ending at end_sec."""
    frame_samples = round(frame_sec * SAMPLE_RATE)
    last_sample = round(end_sec * SAMPLE_RATE) - 1
    return max(0, min(n_frames - 1, last_sample // frame_samples))


def send_time(end_sec: float, frame_sec: float, n_frames: int) -> float:
    """When the frame holding a word's end left, seconds after stream start."""
    return (frame_index(end_sec, frame_sec, n_frames) + 1) * frame_sec


def audio_sent_by(t: float, frame_sec: float, n_frames: int) -> float:
    """Seconds of audio sent by time t after stream start (whole frames)."""
    return min(max(0, math.floor(t / frame_sec + 1e-9)), n_frames) * frame_sec


def word_latencies(
    reference: Sequence[RefWord],
    events: Sequence[TimedEvent],
    frame_sec: float,
    n_frames: int,
    lookahead_sec: float = LOOKAHEAD_SEC,
) -> WordLatencies:
    ref = list(reference)
    ref_tokens = [w.token for w in ref]
    starts = [w.start for w in ref]
    first_time: list[float | None] = [None] * len(ref)
    committed: list[str] = []
    committed_at: list[float] = []  # arrival of the transcript each committed token came in
    partial: list[str] = []
    for event in sorted(events, key=lambda e: e.t):
        if event.kind == "transcript":
            new = tokens(event.text)
            committed += new
            committed_at += [event.t] * len(new)
            partial = []  # any transcript clears the partial
        elif event.kind == "partial":
            partial = tokens(event.text)
        else:
            continue
        heard = audio_sent_by(event.t, frame_sec, n_frames) + lookahead_sec
        visible = bisect.bisect_left(starts, heard)
        for j, _ in exact_matches(ref_tokens[:visible], committed + partial):
            if first_time[j] is None:
                first_time[j] = event.t
    final_time: list[float | None] = [None] * len(ref)
    for j, h in exact_matches(ref_tokens, committed):
        final_time[j] = committed_at[h]
    due = [send_time(w.end, frame_sec, n_frames) for w in ref]
    final: list[float | None] = []
    first: list[float | None] = []
    seen_only = 0
    for j in range(len(ref)):
        fin, fst = final_time[j], first_time[j]
        if fin is None:
            seen_only += fst is not None
            final.append(None)
            first.append(None)
            continue
        final.append(fin - due[j])
        first.append(min(fst if fst is not None else fin, fin) - due[j])
    return WordLatencies(ref, final, first, seen_only)


def timed_events(records: Iterable[tuple[float, dict[str, Any]]]) -> list[TimedEvent]:
    """Partial and transcript events (channel 0) of a recorded session as TimedEvents."""
    return [
        TimedEvent(t, event["event"], event.get("text", ""))
        for t, event in records
        if event.get("event") in ("partial", "transcript") and event.get("channel", 0) == 0
    ]


@dataclass
class Distribution:
    """p50/p95/p99/mean/max of a list of values (seconds), JSON-ready."""

    n: int = 0
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    mean: float | None = None
    max: float | None = None
    values: list[float] = field(default_factory=list, repr=False)

    @classmethod
    def of(cls, values: Iterable[float], keep: bool = False) -> Distribution:
        data = np.asarray(list(values), dtype=float)
        if data.size == 0:
            return cls()
        p50, p95, p99 = np.percentile(data, [50, 95, 99])
        return cls(
            n=int(data.size),
            p50=round(float(p50), 4),
            p95=round(float(p95), 4),
            p99=round(float(p99), 4),
            mean=round(float(data.mean()), 4),
            max=round(float(data.max()), 4),
            values=[round(float(v), 4) for v in data] if keep else [],
        )

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "n": self.n,
            "p50": self.p50,
            "p95": self.p95,
            "p99": self.p99,
            "mean": self.mean,
            "max": self.max,
        }
        if self.values:
            out["values"] = self.values
        return out
