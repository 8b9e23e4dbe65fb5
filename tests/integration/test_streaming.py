"""Partials, streaming mode and endpointing, over real sockets with the real model."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from bench.scoring import normalize, wer
from tests.audio_utils import read_wav, silence, to_pcm16, white_noise
from tests.ws_utils import run_session, text_of, transcripts

LONG = "pt-longform-dev"


def ws_url(gateway) -> str:
    return gateway.url.replace("http", "ws") + "/ws/transcribe"


@pytest.mark.parametrize("mode", ["batch", "stream"])
def test_long_form_in_both_modes(gateway, manifest, whole_file_text, mode: str) -> None:
    """Paced at 2x real time (the worker has time for partials between finals). Measured
    2026-11-26 on pt-longform-dev (whole file 14.6%, 151 words): batch (default window)
    17-19%, stream 18-23.2% over several runs (what LocalAgreement commits depends on when
    each decode ran); the bound leaves room for that spread, the benchmark reports the figures
    at real time (stream 15.5% over 15 clips against 13.3% whole-file)."""
    audio = to_pcm16(read_wav(manifest[LONG].path))
    start = {"language": "pt", "mode": mode, "partials": True}
    events = asyncio.run(run_session(ws_url(gateway), audio, start, realtime_ms=150))
    kinds = [e["event"] for e in events]
    assert "error" not in kinds
    assert kinds.count("partial") >= 5, kinds.count("partial")
    # every transcript's words were shown by a partial first (most of them, at least), and a
    # partial never repeats text that is already final
    committed = ""
    seen_in_partial = 0
    partial_text = ""
    for event in events:
        if event["event"] == "partial":
            partial_text = normalize(event["text"])
        elif event["event"] == "transcript":
            text = normalize(event["text"])
            if text and partial_text and text.split()[0] in partial_text.split():
                seen_in_partial += 1
            grown = f"{committed} {text}".strip()
            assert grown.startswith(committed)  # committed text only grows
            committed = grown
            partial_text = ""
    assert seen_in_partial >= len(transcripts(events)) // 3
    reference = manifest[LONG].reference_text
    streamed, whole = wer(reference, text_of(events)), wer(reference, whole_file_text(LONG))
    assert streamed <= whole + 0.10, (streamed, whole)


def test_silence_and_noise_between_speech(gateway, manifest) -> None:
    """30 s of silence then 30 s of noise between two utterances: no words there, and an
    utterance_end right after the first utterance."""
    first = read_wav(manifest["ufpalign-coxinha"].path)  # 4.5 s
    second = read_wav(manifest["ufpalign-m-001"].path)  # 2.1 s
    gap_start = first.size / 16000
    audio = np.concatenate([first, silence(30.0), white_noise(30.0, -40.0, seed=3), second])
    events = asyncio.run(
        run_session(
            ws_url(gateway),
            to_pcm16(audio),
            {"language": "pt", "profile": "balanced"},
            realtime_ms=60,  # 5x real time
        )
    )
    words = [w for t in transcripts(events) for w in t["words"]]
    inside = [w for w in words if w["start"] > gap_start + 0.5 and w["end"] < gap_start + 59.8]
    assert inside == [], inside
    assert (
        wer(
            manifest["ufpalign-coxinha"].reference_text
            + " "
            + manifest["ufpalign-m-001"].reference_text,
            text_of(events),
        )
        <= 0.2
    )
    ends = [e for e in events if e["event"] == "utterance_end"]
    assert ends and 2.5 <= ends[0]["end"] <= gap_start + 0.5, ends  # speech ends at ~3.1 s
    first_end = events.index(ends[0])
    before = [e for e in events[:first_end] if e["event"] == "transcript"]
    assert before and normalize(before[-1]["text"]).endswith("frango")
    # nothing was sent to the worker for the gap: the session's windows are few
    assert events[-1]["summary"]["windows"] <= 6
