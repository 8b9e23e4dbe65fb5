"""Concurrent real-time sessions per worker: 1, 2, 4, 8, ... until the p95 final latency passes
the bound or transcription falls behind real time.

Sessions stream different slices (random offsets into the pool's clips) and start at random
moments, so windows do not line up: identical synchronised streams would flatter batching.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import Any

from bench.clips import WholeFileCache, pcm16, pcm_slice
from bench.latency import Distribution, reference_words, timed_events, word_latencies
from bench.resources import Sampler
from bench.scoring import Clip, wer
from bench.session_runner import SessionRecord, run_session
from bench.stack import Stack

START_SPREAD_SEC = 2.0


@dataclass(frozen=True)
class Planned:
    clip: Clip
    offset_sec: float
    duration_sec: float
    delay_sec: float


def plan(pool: list[Clip], sessions: int, session_sec: float, rng: random.Random) -> list[Planned]:
    out = []
    for i in range(sessions):
        clip = pool[i % len(pool)]
        duration = min(session_sec, clip.duration_s)
        offset = rng.uniform(0.0, clip.duration_s - duration) if clip.duration_s > duration else 0.0
        out.append(Planned(clip, round(offset, 2), duration, rng.uniform(0.0, START_SPREAD_SEC)))
    return out


async def run_level(
    stack: Stack,
    planned: list[Planned],
    cache: WholeFileCache,
    start: dict[str, Any],
    frame_sec: float,
) -> dict[str, Any]:
    sampler = Sampler(stack.worker_pids).start()
    records = await asyncio.gather(
        *(
            run_session(
                stack.ws_url,
                pcm_slice(pcm16(p.clip.path), p.offset_sec, p.duration_sec),
                {**start, "language": p.clip.language},
                frame_sec,
                label=f"{p.clip.id}@{p.offset_sec}",
                delay_sec=p.delay_sec,
            )
            for p in planned
        )
    )
    usage = sampler.stop()
    final: list[float] = []
    refs: list[str] = []
    hyps: list[str] = []
    matched = total = 0
    for p, record in zip(planned, records, strict=True):
        whole = cache.get(p.clip)
        ref = reference_words(whole.segments, p.offset_sec, p.duration_sec)
        lat = word_latencies(ref, timed_events(record.events), frame_sec, record.n_frames)
        final += lat.final_values()
        matched += len(lat.final_values())
        total += len(ref)
        refs.append(" ".join(w.token for w in ref))
        hyps.append(record.text())
    audio_sec = sum(r.audio_sec for r in records)
    stop_to_end = Distribution.of(r.stop_to_end for r in records if r.stop_to_end is not None)
    lateness = max((max(r.send_lateness, default=0.0) for r in records), default=0.0)
    return {
        "sessions": len(planned),
        "sessions_per_worker": round(len(planned) / max(1, len(stack.worker_urls)), 2),
        "audio_sec": round(audio_sec, 2),
        "final_latency": Distribution.of(final).as_dict(),
        "matched_fraction": round(matched / total, 4) if total else 0.0,
        "quality_vs_whole_file": round(1.0 - wer(refs, hyps), 4),
        "stop_to_end": stop_to_end.as_dict(),
        "failed_sessions": sum(not r.ok for r in records),
        "incomplete_sessions": sum(not transcribed_all(r) for r in records if r.ok),
        "errors": sum(len(r.errors) for r in records),
        "error_codes": sorted({str(e.get("code")) for r in records for e in r.errors}),
        "client_max_send_lateness_sec": round(lateness, 4),
        "worker": usage.as_dict(),
        # CPU seconds of the workers per second of audio streamed (CPU real-time factor)
        "worker_cpu_rtf": round(usage.cpu_sec / audio_sec, 4) if audio_sec else None,
    }


def transcribed_all(record: SessionRecord, tolerance_sec: float = 0.05) -> bool:
    """The session's `end` summary says every second it sent was transcribed (nothing lost)."""
    ends = (e.get("summary", {}) for _, e in record.events if e["event"] == "end")
    summary: dict[str, Any] = next(ends, {})
    audio, done = summary.get("audio_sec"), summary.get("transcribed_sec")
    return audio is not None and done is not None and done >= audio - tolerance_sec


def passes(level: dict[str, Any], bound_sec: float) -> tuple[bool, str]:
    p95 = level["final_latency"]["p95"]
    behind = level["stop_to_end"]["p50"]
    if level["failed_sessions"] or level["errors"]:
        return False, f"{level['failed_sessions']} failed sessions, errors {level['error_codes']}"
    if level.get("incomplete_sessions"):
        return False, f"{level['incomplete_sessions']} sessions lost audio (transcribed < sent)"
    if p95 is None or p95 > bound_sec:
        return (
            False,
            f"p95 final latency {p95 if p95 is None else round(p95, 2)} s > {bound_sec:g} s",
        )
    if behind is not None and behind > bound_sec:
        return False, f"behind real time: stop-to-end p50 {behind:.2f} s"
    return True, "ok"


async def run_throughput(
    stack: Stack,
    pool: list[Clip],
    cache: WholeFileCache,
    start: dict[str, Any],
    frame_sec: float,
    session_sec: float,
    max_sessions: int,
    bound_sec: float = 3.0,
    seed: int = 1,
) -> dict[str, Any]:
    rng = random.Random(seed)
    for clip in pool:
        cache.get(clip)  # whole-file references first, not while sessions run
    levels: list[dict[str, Any]] = []
    best = 0
    sessions = 1
    while sessions <= max_sessions:
        level = await run_level(
            stack, plan(pool, sessions, session_sec, rng), cache, start, frame_sec
        )
        ok, why = passes(level, bound_sec)
        level["passes"], level["verdict"] = ok, why
        levels.append(level)
        if not ok:
            break
        best = sessions
        sessions *= 2
    workers = max(1, len(stack.worker_urls))
    return {
        "start": start,
        "pool": [c.id for c in pool],
        "session_sec": session_sec,
        "bound_sec": bound_sec,
        "stack": stack.config,
        "levels": levels,
        "max_sessions": best,
        "max_sessions_per_worker": round(best / workers, 2),
    }
