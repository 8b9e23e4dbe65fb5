"""End-to-end sweep: real-time sessions through several gateways behind NGINX, to the workers
behind their NGINX upstream, at rising session counts (issue 17's GPU sweep; on CPU at small
sizes in the tests).

`python -m bench --sections sweep --sweep-sessions 64,128,256 --sweep-gateways 3
--sweep-workers 1 --worker-env ASR_WORKER_DEVICE=cuda ...`

    clients --WS--> NGINX (nginx/gateways.conf) --> G gateways --HTTP--> NGINX (nginx/nginx.conf)
            --> W workers

Sessions stream slices of the pool's clips from random offsets, starting at random moments
(bench/throughput.py's plan), in real time, with the given start message (default: balanced).
Per level: final-word latency p50/p95, stop -> end, what was lost (failed sessions, error
events, sessions whose `end` says fewer seconds transcribed than sent), the workers' batches
(mean requests per batched call, from their /metrics), their model time per stage, GPU
utilisation where the workers export it, and the gateways' CPU. A level passes with nothing
lost and p95 <= the bound; the sweep stops at the first level that does not (unless told
to go on), so a lent GPU's minutes are not spent past the knee.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bench.clips import WholeFileCache
from bench.resources import Sampler
from bench.scoring import Clip
from bench.stack import Stack
from bench.throughput import passes, plan, run_level
from launcher.nginx import GATEWAYS_TEMPLATE, nginx_process
from launcher.processes import ManagedProcess, free_port, gateway_process, worker_process

STAGES = ("features", "encoder", "decoder", "align", "other")
GPU_POLL_SEC = 1.0


def start_sweep_stack(
    workers: int,
    gateways: int,
    log_dir: Path,
    worker_env: dict[str, str] | None = None,
    gateway_env: dict[str, str] | None = None,
) -> Stack:
    """W workers behind NGINX, G gateways pointed at it, NGINX in front of the gateways; all
    ready before it returns (what was started is stopped on failure)."""
    stack = Stack("", "", [], config={"workers": workers, "gateways": gateways})
    try:
        started = [
            worker_process(free_port(), env=worker_env, log_dir=log_dir, name=f"sweep-worker-{i}")
            for i in range(workers)
        ]
        for proc in started:
            stack.processes.append(proc.start())
        for proc in started:
            proc.wait_ready(timeout=300)
        stack.worker_urls = [p.url for p in started]
        stack.worker_pids = [p.proc.pid for p in started if p.proc]
        upstream = nginx_process(free_port(), stack.worker_urls, log_dir, name="sweep-nginx")
        stack.processes.append(upstream.start())
        upstream.wait_ready(timeout=30)
        stack.worker_url = upstream.url
        fronted: list[ManagedProcess] = [
            gateway_process(free_port(), upstream.url, gateway_env, log_dir, f"sweep-gw-{i}")
            for i in range(gateways)
        ]
        for proc in fronted:
            stack.processes.append(proc.start())
        for proc in fronted:
            proc.wait_ready(timeout=60)
        stack.gateway_pids = [p.proc.pid for p in fronted if p.proc]
        front = nginx_process(
            free_port(),
            [p.url for p in fronted],
            log_dir,
            name="sweep-front",
            template=GATEWAYS_TEMPLATE,
        )
        stack.processes.append(front.start())
        front.wait_ready(timeout=30)
        stack.gateway_url = front.url
        stack.config["gateway_urls"] = [p.url for p in fronted]
    except BaseException:
        stack.stop()
        raise
    return stack


# a /metrics scrape: {(sample name, sorted labels): value}
Scrape = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(urls: list[str]) -> Scrape:
    """Every sample of the workers' /metrics, summed over the workers."""
    out: Scrape = {}
    for url in urls:
        text = httpx.get(f"{url}/metrics", timeout=10).text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                key = (sample.name, tuple(sorted(sample.labels.items())))
                out[key] = out.get(key, 0.0) + sample.value
    return out


def _delta(after: Scrape, before: Scrape, name: str, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


def worker_figures(before: Scrape, after: Scrape, seconds: float) -> dict[str, Any]:
    """What the workers did between two scrapes (pure)."""
    batches = _delta(after, before, "asr_worker_batch_size_count")
    batched = _delta(after, before, "asr_worker_batch_size_sum")
    requests = sum(
        v - before.get(k, 0.0)
        for k, v in after.items()
        if k[0] == "asr_worker_requests_total" and ("endpoint", "transcribe") in k[1]
    )
    stages = {
        s: round(_delta(after, before, "asr_worker_stage_seconds_sum", stage=s), 3) for s in STAGES
    }
    return {
        "requests": int(requests),
        "rejected_503": int(
            _delta(after, before, "asr_worker_requests_total", endpoint="transcribe", status="503")
        ),
        "batches": int(batches),
        "mean_batch_size": round(batched / batches, 2) if batches else None,
        "stage_sec": stages,
        # model calls' share of the level's wall time, all workers together
        "busy_fraction": round(
            _delta(after, before, "asr_worker_inference_seconds_sum") / seconds, 3
        )
        if seconds > 0
        else None,
    }


def _sessions_started(gateway_url: str) -> float:
    samples = scrape([gateway_url])
    return sum(v for (name, _), v in samples.items() if name == "asr_sessions_total")


@contextmanager
def gpu_poll(urls: list[str]) -> Iterator[list[float]]:
    """nvidia_gpu_utilization (max over GPUs) from the workers' /metrics, once a second, while
    the block runs; empty where no GPU is exported."""
    samples: list[float] = []
    stop = threading.Event()

    def poll() -> None:
        while not stop.wait(GPU_POLL_SEC):
            try:
                values = [
                    v for (name, _), v in scrape(urls).items() if name == "nvidia_gpu_utilization"
                ]
            except httpx.HTTPError:
                continue
            if values:
                samples.append(max(values))

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        yield samples
    finally:
        stop.set()
        thread.join(timeout=5)


@dataclass(frozen=True)
class SweepPlan:
    levels: list[int]
    session_sec: float
    bound_sec: float
    go_on: bool = False  # run every level, even after one failed


async def _level(
    stack: Stack,
    pool: list[Clip],
    cache: WholeFileCache,
    start: dict[str, Any],
    frame_sec: float,
    sessions: int,
    session_sec: float,
    rng: random.Random,
) -> dict[str, Any]:
    return await run_level(stack, plan(pool, sessions, session_sec, rng), cache, start, frame_sec)


def run_sweep(
    stack: Stack,
    pool: list[Clip],
    start: dict[str, Any],
    frame_sec: float,
    sweep: SweepPlan,
    seed: int = 1,
) -> dict[str, Any]:
    rng = random.Random(seed)
    cache = WholeFileCache(stack.worker_url)
    for clip in pool:
        cache.get(clip)  # whole-file references first, not while sessions run
    levels: list[dict[str, Any]] = []
    best = 0
    gateway_urls: list[str] = stack.config.get("gateway_urls", [])
    for sessions in sweep.levels:
        started = [_sessions_started(url) for url in gateway_urls]
        before = scrape(stack.worker_urls)
        gateways = Sampler(stack.gateway_pids).start()
        with gpu_poll(stack.worker_urls) as gpu:
            level = asyncio.run(
                _level(stack, pool, cache, start, frame_sec, sessions, sweep.session_sec, rng)
            )
        usage = gateways.stop()
        after = scrape(stack.worker_urls)
        level["workers"] = worker_figures(before, after, usage.wall_sec)
        level["gateways"] = usage.as_dict()
        # how the front NGINX spread the sessions over the gateways
        level["sessions_per_gateway"] = [
            int(_sessions_started(url) - n) for url, n in zip(gateway_urls, started, strict=True)
        ]
        level["gpu_utilization"] = (
            {"mean": round(sum(gpu) / len(gpu), 1), "max": max(gpu), "samples": len(gpu)}
            if gpu
            else None
        )
        ok, why = passes(level, sweep.bound_sec)
        level["passes"], level["verdict"] = ok, why
        levels.append(level)
        if ok:
            best = max(best, sessions)
        elif not sweep.go_on:
            break
    return {
        "start": start,
        "pool": [c.id for c in pool],
        "session_sec": sweep.session_sec,
        "bound_sec": sweep.bound_sec,
        "stack": stack.config,
        "levels": levels,
        "max_sessions": best,
    }


def run_sweep_section(
    pool: list[Clip],
    start: dict[str, Any],
    frame_sec: float,
    sweep: SweepPlan,
    workers: int,
    gateways: int,
    worker_env: dict[str, str] | None = None,
    log_dir: Path | None = None,
) -> dict[str, Any]:
    log_dir = log_dir or Path(tempfile.mkdtemp(prefix="sweep-logs-"))
    with start_sweep_stack(workers, gateways, log_dir, worker_env) as stack:
        out = run_sweep(stack, pool, start, frame_sec, sweep)
    out["worker_env"] = worker_env or {}
    return out


def text_report(result: dict[str, Any]) -> str:
    stack = result["stack"]
    lines = [
        f"sweep: {stack['gateways']} gateway(s) behind NGINX, {stack['workers']} worker(s); "
        f"{result['session_sec']:g} s sessions {result['start']}; bound p95 <= "
        f"{result['bound_sec']:g} s"
    ]
    for level in result["levels"]:
        final = level["final_latency"]
        workers = level["workers"]
        lines.append(
            f"  {level['sessions']:>4} sessions: final p50/p95 {final['p50']}/{final['p95']} s, "
            f"failed {level['failed_sessions']}, errors {level['errors']}, incomplete "
            f"{level['incomplete_sessions']}, mean batch {workers['mean_batch_size']}, "
            f"GPU {level['gpu_utilization']}: {level['verdict']}"
        )
    lines.append(f"  most sessions passing: {result['max_sessions']}")
    return "\n".join(lines)
