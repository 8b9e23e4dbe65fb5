"""Gateway capacity: N concurrent real-time sessions against the stub worker, so the gateway is
all that is measured. Targets: <= 0.5% of one core and <= 1 MB per session beyond its audio
buffer; event-loop lag p99 <= 50 ms at 500 sessions.

Each level gets a fresh gateway (per-session memory = steady RSS minus the idle RSS, / N).
Sessions start at random moments over a ramp, stream slices of a real clip (the gateway's pause
search needs speech) and are measured in the steady window when all of them are streaming.
Event-loop lag: `GET /health` timed from a probe process, and the delay of the once-per-second
`ack` events seen by the clients. All clients share one process and event loop: its CPU and how
late it sent frames are reported, so a saturated client is visible rather than mistaken for a
slow gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from pathlib import Path
from typing import Any

import psutil

from bench.clips import pcm16, pcm_slice
from bench.lag_probe import probe_samples, start_probe
from bench.latency import Distribution
from bench.resources import Sampler, Usage
from bench.scoring import Clip
from bench.session_runner import SessionRecord, run_session
from bench.stack import stub_stack

CPU_TARGET_PERCENT = 0.5
MEM_TARGET_MB = 1.0
LAG_TARGET_SEC = 0.050
IDLE_SEC = 3.0
# what a session's audio track preallocates, by design: 16 s of 16 kHz PCM16 (api/core/track.py;
# measured from outside here, so stated rather than imported)
BUFFER_MB = 16 * 16_000 * 2 / 2**20


async def run_level(
    sessions: int,
    clip: Clip,
    start: dict[str, Any],
    session_sec: float,
    frame_sec: float,
    log_dir: Path,
    stub_sleep_ms: float,
    seed: int,
) -> dict[str, Any]:
    rng = random.Random(seed)
    ramp = max(2.0, sessions / 50)
    steady = session_sec - ramp - 2.0
    if steady < 3.0:
        raise ValueError(
            f"sessions of {session_sec} s leave no steady window after a {ramp} s ramp"
        )
    audio = pcm16(clip.path)
    with stub_stack(stub_sleep_ms, log_dir) as stack:
        gateway = Sampler(stack.gateway_pids).start()
        idle_probe = start_probe(stack.gateway_url, IDLE_SEC - 0.5)
        await asyncio.sleep(IDLE_SEC)
        idle = gateway.stop()
        idle_lag = [v for _, v in probe_samples(idle_probe)]
        probe = start_probe(stack.gateway_url, ramp + session_sec + 5.0)
        t0 = time.monotonic()
        measured: dict[str, Any] = {}
        window = asyncio.create_task(_steady(stack.gateway_pids, ramp + 1.0, steady, measured))
        records = await asyncio.gather(
            *(
                run_session(
                    stack.ws_url,
                    pcm_slice(
                        audio, rng.uniform(0, max(0.0, clip.duration_s - session_sec)), session_sec
                    ),
                    {**start, "language": clip.language},
                    frame_sec,
                    label=f"s{i}",
                    delay_sec=rng.uniform(0.0, ramp),
                    keep_events=False,
                )
                for i in range(sessions)
            )
        )
        await window
        probe.terminate()
        lag = [v for t, v in probe_samples(probe) if measured["from"] <= t <= measured["to"]]
    return summarize(sessions, records, idle, measured, lag, idle_lag, t0)


async def _steady(pids: list[int], after: float, seconds: float, out: dict[str, Any]) -> None:
    await asyncio.sleep(after)
    me = psutil.Process()
    client0 = sum(me.cpu_times()[:2])
    out["from"] = time.monotonic()
    sampler = Sampler(pids).start()
    await asyncio.sleep(seconds)
    out["gateway"] = sampler.stop()
    out["to"] = time.monotonic()
    out["client_cpu_percent"] = 100.0 * (sum(me.cpu_times()[:2]) - client0) / seconds


def summarize(
    sessions: int,
    records: list[SessionRecord],
    idle: Usage,
    measured: dict[str, Any],
    lag: list[float],
    idle_lag: list[float],
    t0: float,
) -> dict[str, Any]:
    busy: Usage = measured["gateway"]
    cpu_per_session = (busy.cpu_percent - idle.cpu_percent) / sessions
    mem_per_session = (busy.rss_mean - idle.rss_mean) / sessions / 2**20
    lateness = Distribution.of(x for r in records for x in r.send_lateness)
    ack = Distribution.of(x for r in records for x in r.ack_delays())
    lag_dist = Distribution.of(lag)
    client_cpu = measured["client_cpu_percent"]
    saturated = client_cpu > 90.0 or (lateness.p99 or 0.0) > 0.1
    return {
        "sessions": sessions,
        "failed_sessions": sum(not r.ok for r in records),
        "refused": sum(r.refused is not None for r in records),
        "failures": sorted({r.failure for r in records if r.failure})[:5],
        "error_codes": sorted({str(e.get("code")) for r in records for e in r.errors}),
        "transcripts": sum(1 for r in records for _, e in r.events if e["event"] == "transcript"),
        "steady_sec": round(busy.wall_sec, 2),
        "gateway_idle": idle.as_dict(),
        "gateway_busy": busy.as_dict(),
        "cpu_percent_per_session": round(cpu_per_session, 4),
        "rss_mb_per_session": round(mem_per_session, 3),
        "rss_mb_per_session_beyond_buffer": round(mem_per_session - BUFFER_MB, 3),
        "health_lag": lag_dist.as_dict(),
        "health_lag_idle": Distribution.of(idle_lag).as_dict(),
        "ack_delay": ack.as_dict(),
        "client_cpu_percent": round(client_cpu, 1),
        "client_send_lateness": lateness.as_dict(),
        "client_saturated": saturated,
        "targets": {
            "cpu_per_session": cpu_per_session <= CPU_TARGET_PERCENT,
            "memory_per_session": mem_per_session - BUFFER_MB <= MEM_TARGET_MB,
            "lag_p99": lag_dist.p99 is not None and lag_dist.p99 <= LAG_TARGET_SEC,
        },
        "wall_sec": round(time.monotonic() - t0, 1),
    }


async def run_capacity(
    levels: list[int],
    clip: Clip,
    start: dict[str, Any],
    session_sec: float,
    frame_sec: float,
    log_dir: Path,
    stub_sleep_ms: float = 50.0,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "clip": clip.id,
        "start": start,
        "session_sec": session_sec,
        "stub_sleep_ms": stub_sleep_ms,
        "levels": [],
    }
    for i, sessions in enumerate(levels):
        with contextlib.suppress(OSError):  # many sockets: raise the soft limit if we may
            import resource

            soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
        level = await run_level(
            sessions, clip, start, session_sec, frame_sec, log_dir, stub_sleep_ms, seed=i
        )
        out["levels"].append(level)
    return out
