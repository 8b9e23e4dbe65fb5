"""`--sections longform`: streaming judged on long-form speech (issue 16's table).

The long-form clips (bench/longform.py) streamed in real time for each configuration, with 1, 2,
3 and 4 concurrent sessions: every session a different clip, all started together (two
sessions: two rounds of two, so each run still covers all four clips). Runs of 1 and 2 sessions
are repeated (`runs`) for a median and a spread; 3 and 4 sessions run once and report latency
and whether anything was lost. Every figure is per run pooled over its sessions; WER is against
each clip's reference, with the whole-file WER of the same model beside it.
"""

from __future__ import annotations

import asyncio
import io
import statistics
import time
import wave
from typing import Any

import httpx

from bench.latency import Distribution, reference_words, timed_events, word_latencies
from bench.longform import LongClip
from bench.scoring import wer
from bench.session_runner import SessionRecord, run_session

# the reference's own start payload (2 s / 10 s batch windows; partials are on by default)
REFERENCE_START: dict[str, Any] = {
    "batch_window_sec": 2.0,
    "max_batch_window_sec": 10.0,
    "enable_insights": False,
    "provider": "paneas",
}
CONFIGS: dict[str, dict[str, Any]] = {
    "stream": {"mode": "stream"},  # the recommended live configuration, server defaults
    "reference": REFERENCE_START,
}
MIN_MATCHED = 0.85  # latency figures count only where this much of the reference was matched


def whole_file(worker_url: str, clip: LongClip) -> dict[str, Any]:
    """The worker's word-timestamped transcription of the whole clip (language given)."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(clip.pcm16())
    started = time.perf_counter()
    response = httpx.post(
        f"{worker_url.rstrip('/')}/transcribe",
        files={"file": (f"{clip.id}.wav", buffer.getvalue())},
        data={"language": clip.language, "beam_size": "5"},
        timeout=1800,
    )
    response.raise_for_status()
    body = response.json()
    return {
        "text": body["text"],
        "segments": body["segments"],
        "wer": round(wer(clip.reference, body["text"]), 4),
        "wall_sec": round(time.perf_counter() - started, 2),
    }


def rounds(n_clips: int, sessions: int) -> list[list[int]]:
    """Which clips stream together: all clips in groups of `sessions` when that divides them,
    else one round of the first `sessions` clips (wrapping around)."""
    if n_clips % sessions == 0:
        return [list(range(i, i + sessions)) for i in range(0, n_clips, sessions)]
    return [[i % n_clips for i in range(sessions)]]


async def run_longform(
    ws_url: str,
    clips: list[LongClip],
    whole: dict[str, dict[str, Any]],
    configs: list[str],
    levels: list[int],
    runs: int,
    frame_sec: float,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "clips": {
            c.id: {"duration_sec": round(c.duration_sec, 1), "whole_file_wer": whole[c.id]["wer"]}
            for c in clips
        },
        "whole_file_wer": round(
            wer([c.reference for c in clips], [whole[c.id]["text"] for c in clips]), 4
        ),
        "rows": [],
    }
    for name in configs:
        for sessions in levels:
            repeats = runs if sessions <= 2 else 1
            measured = []
            for _ in range(repeats):
                records: list[dict[str, Any]] = []
                for group in rounds(len(clips), sessions):
                    records += await _round(
                        ws_url, [clips[i] for i in group], whole, name, frame_sec
                    )
                measured.append(_run_figures(records, clips, whole))
            out["rows"].append(
                {"config": name, "start": CONFIGS[name], "sessions": sessions, **summary(measured)}
            )
            print(_line(out["rows"][-1]), flush=True)
    return out


async def _round(
    ws_url: str,
    group: list[LongClip],
    whole: dict[str, dict[str, Any]],
    config: str,
    frame_sec: float,
) -> list[dict[str, Any]]:
    records = await asyncio.gather(
        *(
            run_session(
                ws_url,
                clip.pcm16(),
                {**CONFIGS[config], "language": clip.language},
                frame_sec,
                label=clip.id,
            )
            for clip in group
        )
    )
    return [score(r, c, whole[c.id]) for r, c in zip(records, group, strict=True)]


def score(record: SessionRecord, clip: LongClip, whole: dict[str, Any]) -> dict[str, Any]:
    lat = word_latencies(
        reference_words(whole["segments"]),
        timed_events(record.events),
        record.frame_sec,
        record.n_frames,
    )
    end = next((e for _, e in record.events if e["event"] == "end"), None)
    summary_ = (end or {}).get("summary", {})
    transcripts = [e for _, e in record.events if e["event"] == "transcript"]
    return {
        "clip": clip.id,
        "ok": record.ok,
        "failure": record.failure,
        "errors": [f"{e.get('code')}: {e.get('message')}" for e in record.errors],
        "text": record.text(),
        "wer": round(wer(clip.reference, record.text()), 4),
        "lost_sec": round(summary_.get("audio_sec", 0.0) - summary_.get("transcribed_sec", 0.0), 3),
        "failed_spans": summary_.get("failed_spans", []),
        "behind_transcripts": sum(1 for e in transcripts if e.get("behind")),
        "transcripts": len(transcripts),
        "matched": round(lat.matched_fraction, 4),
        "final": [round(v, 3) for v in lat.final_values()],
        "first": [round(v, 3) for v in lat.first_values()],
        "stop_to_end_sec": record.stop_to_end,
    }


def _run_figures(
    sessions: list[dict[str, Any]], clips: list[LongClip], whole: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    by_id = {c.id: c for c in clips}
    refs = [by_id[s["clip"]].reference for s in sessions]
    final = Distribution.of(v for s in sessions if s["matched"] >= MIN_MATCHED for v in s["final"])
    first = Distribution.of(v for s in sessions if s["matched"] >= MIN_MATCHED for v in s["first"])
    return {
        "wer": round(wer(refs, [s["text"] for s in sessions]), 4),
        "whole_file_wer": round(wer(refs, [whole[s["clip"]]["text"] for s in sessions]), 4),
        "final_p50": final.p50,
        "final_p95": final.p95,
        "first_p50": first.p50,
        "first_p95": first.p95,
        "matched_min": min(s["matched"] for s in sessions),
        "behind_transcripts": sum(s["behind_transcripts"] for s in sessions),
        "failed_sessions": sum(not s["ok"] for s in sessions),
        "errors": sum(len(s["errors"]) for s in sessions),
        "lost_sec": round(sum(max(0.0, s["lost_sec"]) for s in sessions), 3),
        "sessions": sessions,
    }


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median and (min, max) of each figure over the runs."""
    out: dict[str, Any] = {"runs": runs}
    for key in ("wer", "whole_file_wer", "final_p50", "final_p95", "first_p50", "first_p95"):
        values = [r[key] for r in runs if r[key] is not None]
        out[key] = {
            "median": round(statistics.median(values), 4) if values else None,
            "min": min(values, default=None),
            "max": max(values, default=None),
        }
    for key in ("failed_sessions", "errors", "lost_sec", "behind_transcripts"):
        out[key] = max(r[key] for r in runs)
    out["matched_min"] = min(r["matched_min"] for r in runs)
    return out


def _line(row: dict[str, Any]) -> str:
    return (
        f"longform {row['config']:9s} x{row['sessions']}: WER {row['wer']['median']:.3f} "
        f"(whole {row['whole_file_wer']['median']:.3f}) final p50 {row['final_p50']['median']} "
        f"p95 {row['final_p95']['median']} first p50 {row['first_p50']['median']} "
        f"lost {row['lost_sec']} s, failed {row['failed_sessions']}"
    )
