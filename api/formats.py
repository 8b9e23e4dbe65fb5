"""Response formats of the OpenAI-compatible file endpoint: json, text, srt, vtt, verbose_json."""

from __future__ import annotations

from typing import Any, Literal

from api.file_transcription import FileResult

ResponseFormat = Literal["json", "text", "srt", "vtt", "verbose_json"]


def _clock(seconds: float, decimal: str) -> str:
    millis = round(max(seconds, 0.0) * 1000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal}{millis:03d}"


def to_srt(result: FileResult) -> str:
    blocks = [
        f"{i}\n{_clock(s.start, ',')} --> {_clock(s.end, ',')}\n{s.text.strip()}\n"
        for i, s in enumerate(result.segments, start=1)
    ]
    return "\n".join(blocks)


def to_vtt(result: FileResult) -> str:
    cues = [
        f"{_clock(s.start, '.')} --> {_clock(s.end, '.')}\n{s.text.strip()}\n"
        for s in result.segments
    ]
    return "WEBVTT\n\n" + "\n".join(cues)


def to_verbose_json(
    result: FileResult, granularities: set[str], task: str = "transcribe"
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "task": task,
        "language": result.language,
        "duration": result.duration_sec,
        "text": result.text,
    }
    if "segment" in granularities or not granularities:
        body["segments"] = [
            {
                "id": s.id,
                "start": s.start,
                "end": s.end,
                "text": s.text,
                "avg_logprob": s.avg_logprob,
                "no_speech_prob": s.no_speech_prob,
            }
            for s in result.segments
        ]
    if "word" in granularities:
        body["words"] = [
            {"word": w.word.strip(), "start": w.start, "end": w.end, "probability": w.probability}
            for s in result.segments
            for w in s.words
        ]
    return body
