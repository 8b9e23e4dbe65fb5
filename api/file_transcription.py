"""HTTP file transcription: the gateway's VAD marks the file's speech, the file is cut at pauses
into pieces of at most 30 s, the pieces with speech are transcribed in parallel on the pool
(bounded, behind live windows) and stitched in order."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
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


@dataclass(frozen=True)
class PieceResult:
    """One piece of a file, transcribed: its segments on the file's timeline (ids continue
    across pieces) and the language it was decoded in (None: no speech, nothing was asked)."""

    index: int
    segments: list[Segment]
    language: str | None
    heard_sec: float = 0.0  # audio the model was given (0: none, no speech)
    text_tokens: int = 0  # of the piece's text, in the model's tokenizer

    @property
    def text(self) -> str:
        return " ".join(seg.text for seg in self.segments).strip()


async def transcribe_pieces(
    audio: np.ndarray,
    options: DecodeOptions,
    pool: PoolClient,
    limiter: asyncio.Semaphore,
    speech: SpeechTimeline | None,
    max_piece_sec: float = 30.0,
) -> AsyncGenerator[PieceResult, None]:
    """The file's pieces, transcribed in parallel on the pool and yielded in order as each one
    (and every one before it) is done. `speech`: the file's VAD timeline (None: each worker runs
    its own VAD). Stopping early (a client gone) cancels the pieces still running."""
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

    next_id = 0

    def shifted(index: int, result: TranscriptionResponse | None) -> PieceResult:
        nonlocal next_id
        offset = pieces[index][0] / SAMPLE_RATE
        segments = []
        for seg in result.segments if result else []:
            segments.append(shift_segment(seg, offset, next_id))
            next_id += 1
        if result is None:
            return PieceResult(index, segments, None)
        heard = (pieces[index][1] - pieces[index][0]) / SAMPLE_RATE
        return PieceResult(index, segments, result.language, heard, result.text_tokens)

    language = options.language
    index = 0
    # Without a language, detect it on the first piece with speech, then keep it for the
    # rest, so all pieces are decoded in one language.
    while language is None and index < len(pieces):
        result = await run(index, options)
        if result is not None and result.speech_sec > 0:
            language = result.language
        yield shifted(index, result)
        index += 1
    fixed = options.model_copy(update={"language": language})
    tasks = [asyncio.create_task(run(i, fixed)) for i in range(index, len(pieces))]
    try:
        for i, task in enumerate(tasks, start=index):
            yield shifted(i, await task)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def transcribe_file(
    audio: np.ndarray,
    options: DecodeOptions,
    pool: PoolClient,
    limiter: asyncio.Semaphore,
    speech: SpeechTimeline | None,
    default_language: str,
    max_piece_sec: float = 30.0,
) -> FileResult:
    """The whole file at once; `default_language`: reported for a file without speech."""
    segments: list[Segment] = []
    language = options.language
    async for piece in transcribe_pieces(audio, options, pool, limiter, speech, max_piece_sec):
        segments.extend(piece.segments)
        language = language or piece.language
    return FileResult(
        text=" ".join(seg.text for seg in segments).strip(),
        language=language or default_language,
        duration_sec=duration_of(audio),
        segments=segments,
    )


def duration_of(audio: np.ndarray) -> float:
    return round(audio.size / SAMPLE_RATE, 3)
