"""HTTP file transcription: the gateway's VAD marks the file's speech, the file is cut at pauses
into pieces of at most 30 s, the pieces with speech are transcribed in parallel on the pool
(bounded, behind live windows) and stitched in order."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import numpy as np

from api.core.speech import SpeechTimeline
from api.core.windowing import FRAME_SAMPLES, frame_db, quiet_runs, quiet_threshold, quietest_point
from api.pool import PoolClient
from api.vad_model import SileroModel
from contracts.audio import SAMPLE_RATE, float_to_pcm16
from contracts.words import shift_segment
from contracts.worker import DecodeOptions, Priority, Segment, SpeechSpans, TranscriptionResponse


@dataclass(frozen=True)
class FileResult:
    text: str
    language: str
    duration_sec: float
    segments: list[Segment]


def split_points(pcm: np.ndarray, max_sec: float) -> list[tuple[int, int]]:
    """(start, end) samples of pieces <= max_sec, cut in the longest pause of each piece's
    second half (else its quietest 100 ms), so no word is split."""
    db = frame_db(pcm)
    threshold = quiet_threshold(db)
    max_frames = int(max_sec * SAMPLE_RATE / FRAME_SAMPLES)
    min_frames = max_frames // 2
    pieces: list[tuple[int, int]] = []
    position = 0  # frames
    total_frames = db.size
    while total_frames - position > max_frames:
        region = db[position + min_frames : position + max_frames]
        runs = quiet_runs(region <= threshold)
        if runs:
            start, end = max(runs, key=lambda run: run[1] - run[0])
            cut = position + min_frames + (start + end) // 2
        else:
            cut = position + min_frames + quietest_point(region)
        pieces.append((position * FRAME_SAMPLES, cut * FRAME_SAMPLES))
        position = cut
    pieces.append((position * FRAME_SAMPLES, pcm.size))
    return [(s, e) for s, e in pieces if e > s]


def file_speech(audio: np.ndarray, model: SileroModel, threshold: float) -> SpeechTimeline:
    """The whole file scored by the VAD (in a thread: ~0.15 ms per 32 ms of audio)."""
    timeline = SpeechTimeline(threshold)
    probs = model.probabilities(audio)
    timeline.add(0, probs)
    return timeline


async def transcribe_file(
    audio: np.ndarray,
    options: DecodeOptions,
    pool: PoolClient,
    limiter: asyncio.Semaphore,
    speech: SpeechTimeline | None,
    default_language: str,
    max_piece_sec: float = 30.0,
) -> FileResult:
    """`speech`: the file's VAD timeline (None: each worker runs its own VAD);
    `default_language`: the language reported for a file without speech."""
    pcm = float_to_pcm16(audio)
    pieces = split_points(pcm, max_piece_sec)
    spans: list[SpeechSpans | None] = [
        speech.spans(start, end) if speech is not None else None for start, end in pieces
    ]

    async def run(index: int, opts: DecodeOptions) -> TranscriptionResponse | None:
        if spans[index] == []:
            return None  # no speech: nothing to ask
        start, end = pieces[index]
        async with limiter:
            return await pool.transcribe(pcm[start:end], opts, Priority.file, spans[index])

    results: dict[int, TranscriptionResponse | None] = {}
    language = options.language
    next_index = 0
    # Without a language, detect it on the first piece with speech, then keep it for the
    # rest, so all pieces are decoded in one language.
    while language is None and next_index < len(pieces):
        results[next_index] = result = await run(next_index, options)
        next_index += 1
        if result is not None and result.speech_sec > 0:
            language = result.language
    fixed = options.model_copy(update={"language": language})
    rest = range(next_index, len(pieces))
    for index, result in zip(
        rest, await asyncio.gather(*(run(i, fixed) for i in rest)), strict=True
    ):
        results[index] = result

    segments: list[Segment] = []
    for index in range(len(pieces)):
        offset = pieces[index][0] / SAMPLE_RATE
        for seg in piece.segments if (piece := results[index]) else []:
            segments.append(shift_segment(seg, offset, len(segments)))
    first = next((r for r in results.values() if r is not None), None)
    return FileResult(
        text=" ".join(seg.text for seg in segments).strip(),
        language=language or (first.language if first else default_language),
        duration_sec=round(pcm.size / SAMPLE_RATE, 3),
        segments=segments,
    )
