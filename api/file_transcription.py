"""HTTP file transcription: cut a long file at pauses into pieces of at most 30 s, transcribe
the pieces in parallel on the pool (bounded, behind live windows) and stitch them in order."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import numpy as np

from api.asr_client import AsrClient
from api.windowing import FRAME_SAMPLES, frame_db, quiet_runs, quiet_threshold, quietest_point
from asr.audio import SAMPLE_RATE, float_to_pcm16
from asr.schemas import DecodeOptions, Priority, Segment, TranscriptionResponse, Word


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


async def transcribe_file(
    audio: np.ndarray,
    options: DecodeOptions,
    asr: AsrClient,
    limiter: asyncio.Semaphore,
    max_piece_sec: float = 30.0,
) -> FileResult:
    pcm = float_to_pcm16(audio)
    pieces = split_points(pcm, max_piece_sec)

    async def run(index: int, opts: DecodeOptions) -> TranscriptionResponse:
        start, end = pieces[index]
        async with limiter:
            return await asr.transcribe(pcm[start:end], opts, Priority.file)

    results: dict[int, TranscriptionResponse] = {}
    language = options.language
    next_index = 0
    # Without a language, detect it on the first piece with speech, then keep it for the
    # rest, so all pieces are decoded in one language.
    while language is None and next_index < len(pieces):
        results[next_index] = result = await run(next_index, options)
        next_index += 1
        if result.speech_sec > 0:
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
        for seg in results[index].segments:
            segments.append(_shifted(seg, offset, len(segments)))
    return FileResult(
        text=" ".join(seg.text for seg in segments).strip(),
        language=language or (results[0].language if results else "pt"),
        duration_sec=round(pcm.size / SAMPLE_RATE, 3),
        segments=segments,
    )


def _shifted(seg: Segment, offset: float, new_id: int) -> Segment:
    return Segment(
        id=new_id,
        start=round(seg.start + offset, 3),
        end=round(seg.end + offset, 3),
        text=seg.text,
        avg_logprob=seg.avg_logprob,
        no_speech_prob=seg.no_speech_prob,
        words=[
            Word(
                word=w.word,
                start=round(w.start + offset, 3),
                end=round(w.end + offset, 3),
                probability=w.probability,
            )
            for w in seg.words
        ],
    )
