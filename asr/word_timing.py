"""Word timestamps for a batch of decoded inputs, each on its own timeline.

A port of faster-whisper 1.2.1's `WhisperModel.add_word_timestamps` (the same cross-attention
alignment through CTranslate2's `align`, the same duration and punctuation rules). The one
change: faster-whisper carries `last_speech_timestamp` from one batch item to the next, so a
window's first word would be trimmed differently depending on its batch mates; here every
input starts from 0, as it would alone.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# faster-whisper's defaults for transcribe()
PREPEND_PUNCTUATIONS = "\"'“¿([{-"
APPEND_PUNCTUATIONS = "\"'.。,，!！?？:：”)]}、"
SENTENCE_END_MARKS = ".。!！?？"

Subsegment = dict[str, Any]  # {"start", "end", "tokens", ...} as split by faster-whisper


def text_tokens(tokenizer: Any, inputs: list[list[Subsegment]]) -> list[list[int]]:
    """Each input's text tokens (timestamps and end of text left out), what `align` takes."""
    return [[t for sub in item for t in sub["tokens"] if t < tokenizer.eot] for item in inputs]


def add_words(
    tokenizer: Any,
    inputs: list[list[Subsegment]],
    alignments: list[list[dict[str, Any]]],
) -> None:
    """Set `words` on every subsegment of every input (times in seconds of that input), from
    the alignment of each input's text_tokens() (one `align` call for the batch)."""
    from faster_whisper.transcribe import merge_punctuations

    for item, alignment in zip(inputs, alignments, strict=True):
        tokens = [[t for t in sub["tokens"] if t < tokenizer.eot] for sub in item]
        median, longest = _durations(alignment)
        merge_punctuations(alignment, PREPEND_PUNCTUATIONS, APPEND_PUNCTUATIONS)
        _assign(item, alignment, tokens, median, longest)


def _durations(alignment: list[dict[str, Any]]) -> tuple[float, float]:
    durations = np.array([w["end"] - w["start"] for w in alignment])
    durations = durations[durations.nonzero()]
    median = min(0.7, float(np.median(durations))) if len(durations) else 0.0
    longest = median * 2
    if len(durations):
        # long words at sentence boundaries are alignment artefacts: cap them
        for i in range(1, len(alignment)):
            if alignment[i]["end"] - alignment[i]["start"] > longest:
                if alignment[i]["word"] in SENTENCE_END_MARKS:
                    alignment[i]["end"] = alignment[i]["start"] + longest
                elif alignment[i - 1]["word"] in SENTENCE_END_MARKS:
                    alignment[i]["start"] = alignment[i]["end"] - longest
    return median, longest


def _assign(
    item: list[Subsegment],
    alignment: list[dict[str, Any]],
    tokens: list[list[int]],
    median: float,
    longest: float,
) -> None:
    last_speech = 0.0
    index = 0
    for sub, sub_tokens in zip(item, tokens, strict=True):
        saved = 0
        words: list[dict[str, Any]] = []
        while index < len(alignment) and saved < len(sub_tokens):
            timing = alignment[index]
            if timing["word"]:
                words.append(
                    {
                        "word": timing["word"],
                        "start": round(float(timing["start"]), 2),
                        "end": round(float(timing["end"]), 2),
                        "probability": float(timing["probability"]),
                    }
                )
            saved += len(timing["tokens"])
            index += 1
        if words:
            _trim_edges(sub, words, last_speech, median, longest)
            last_speech = sub["end"]
        sub["words"] = words


def _trim_edges(
    sub: Subsegment, words: list[dict[str, Any]], last_speech: float, median: float, longest: float
) -> None:
    first = words[0]
    # the first word after a pause tends to swallow the pause: cap it
    if first["end"] - last_speech > median * 4 and (
        first["end"] - first["start"] > longest
        or (len(words) > 1 and words[1]["end"] - first["start"] > longest * 2)
    ):
        if len(words) > 1 and words[1]["end"] - words[1]["start"] > longest:
            boundary = max(words[1]["end"] / 2, words[1]["end"] - longest)
            first["end"] = words[1]["start"] = boundary
        first["start"] = max(0, first["end"] - longest)
    # prefer the segment's own timestamps where a word at its edge is implausibly long
    if sub["start"] < first["end"] and sub["start"] - 0.5 > first["start"]:
        first["start"] = max(0, min(first["end"] - median, sub["start"]))
    else:
        sub["start"] = first["start"]
    last = words[-1]
    if sub["end"] > last["start"] and sub["end"] + 0.5 < last["end"]:
        last["end"] = max(last["start"] + median, sub["end"])
    else:
        sub["end"] = last["end"]
