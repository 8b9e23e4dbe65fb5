"""The services a benchmark runs against: a running stack (`--url`) or one started here.

Started services go through api.processes (and api.nginx_config for the NGINX upstream that
more than one worker needs), the one way the project starts them. Where NGINX cannot start
(no binary), such a stack is reported unavailable instead of failing the run.
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import httpx

from bench.resources import pid_listening_on
from launcher.processes import ManagedProcess, free_port, gateway_process, worker_process


class StackUnavailable(RuntimeError):
    """This configuration cannot be started here (e.g. no NGINX upstream yet)."""


@dataclass
class Stack:
    gateway_url: str  # http://host:port of the gateway
    worker_url: str  # the pool: one worker or the NGINX upstream
    worker_urls: list[str]  # each worker (for per-worker figures)
    gateway_pids: list[int] = field(default_factory=list)
    worker_pids: list[int] = field(default_factory=list)
    processes: list[ManagedProcess] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def ws_url(self) -> str:
        return self.gateway_url.replace("http", "ws", 1) + "/ws/transcribe"

    @property
    def owned(self) -> bool:
        return bool(self.processes)

    def worker_info(self) -> dict[str, Any]:
        """The first worker's /ready body: model, device, compute type."""
        try:
            return cast(dict[str, Any], httpx.get(f"{self.worker_urls[0]}/ready", timeout=5).json())
        except (httpx.HTTPError, ValueError):
            return {}

    def stop(self) -> None:
        for proc in reversed(self.processes):
            proc.stop()
        self.processes.clear()

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def http_url(url: str) -> str:
    """Accept ws://host:port/ws/transcribe or http://host:port; return http://host:port."""
    url = url.replace("wss://", "https://", 1).replace("ws://", "http://", 1).rstrip("/")
    return url.removesuffix("/ws/transcribe")


def external_stack(url: str, worker_url: str | None = None) -> Stack:
    """A stack somebody else runs; the worker pool URL comes from the gateway's /ready."""
    gateway = http_url(url)
    ready = httpx.get(f"{gateway}/ready", timeout=10)
    ready.raise_for_status()
    pool = (worker_url or ready.json().get("upstream") or "").rstrip("/")
    if not pool:
        raise StackUnavailable("the gateway did not name its upstream: pass --worker-url")
    gw_pid, wk_pid = pid_listening_on(gateway), pid_listening_on(pool)
    return Stack(
        gateway_url=gateway,
        worker_url=pool,
        worker_urls=[pool],
        gateway_pids=[gw_pid] if gw_pid else [],
        worker_pids=[wk_pid] if wk_pid else [],
        config={"external": True, "workers": None, "threads_per_worker": None},
    )


def start_stack(
    workers: int = 1,
    threads: int | None = None,
    log_dir: Path | None = None,
    worker_env: dict[str, str] | None = None,
    gateway_env: dict[str, str] | None = None,
) -> Stack:
    """Start `workers` workers (each with `threads` CPU threads), NGINX when more than one,
    and a gateway in front; wait until all answer /ready."""
    log_dir = log_dir or Path(tempfile.mkdtemp(prefix="bench-logs-"))
    env = dict(worker_env or {})
    if threads:
        env["ASR_WORKER_CPU_THREADS"] = str(threads)
    stack = Stack("", "", [], config={"workers": workers, "threads_per_worker": threads})
    try:
        started = [
            worker_process(free_port(), env=env, log_dir=log_dir, name=f"bench-worker-{i}").start()
            for i in range(workers)
        ]
        stack.processes += started
        for proc in started:
            proc.wait_ready(timeout=180)
        stack.worker_urls = [p.url for p in started]
        stack.worker_pids = [p.proc.pid for p in started if p.proc]
        stack.worker_url = started[0].url if workers == 1 else _nginx(stack, log_dir)
        start_gateway(stack, stack.worker_url, log_dir, gateway_env)
    except BaseException:
        stack.stop()
        raise
    return stack


def start_gateway(
    stack: Stack, upstream: str, log_dir: Path, env: dict[str, str] | None = None
) -> None:
    gateway = gateway_process(free_port(), upstream, env=env, log_dir=log_dir, name="bench-gw")
    stack.processes.append(gateway.start())
    gateway.wait_ready(timeout=60)
    stack.gateway_url = gateway.url
    stack.gateway_pids = [gateway.proc.pid] if gateway.proc else []


def stub_stack(sleep_ms: float, log_dir: Path, gateway_env: dict[str, str] | None = None) -> Stack:
    """A gateway in front of the stub worker (bench/stub_worker.py): the gateway alone."""
    port = free_port()
    stub = ManagedProcess(
        "bench-stub-worker",
        [
            sys.executable,
            "-m",
            "bench.stub_worker",
            "--port",
            str(port),
            "--sleep-ms",
            str(sleep_ms),
        ],
        f"http://127.0.0.1:{port}/ready",
        log_dir=log_dir,
    )
    stack = Stack("", stub.url, [stub.url], config={"stub_sleep_ms": sleep_ms})
    try:
        stack.processes.append(stub.start())
        stub.wait_ready(timeout=30)
        stack.worker_pids = [stub.proc.pid] if stub.proc else []
        start_gateway(stack, stub.url, log_dir, gateway_env)
    except BaseException:
        stack.stop()
        raise
    return stack


def _nginx(stack: Stack, log_dir: Path) -> str:
    try:
        from launcher.nginx import nginx_process
    except ImportError as exc:
        raise StackUnavailable("more than one worker needs the NGINX upstream") from exc
    try:
        proxy: ManagedProcess = nginx_process(free_port(), stack.worker_urls, log_dir=log_dir)
        stack.processes.append(proxy.start())
        proxy.wait_ready(timeout=30)
    except (OSError, RuntimeError, TimeoutError, ValueError) as exc:
        raise StackUnavailable(f"NGINX upstream did not start: {exc}") from exc
    return proxy.url
