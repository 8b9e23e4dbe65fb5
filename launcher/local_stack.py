"""`make run [WORKERS=N]`: the local stack on one machine, without docker.

Starts N CPU workers (ports 8001..; one CPU thread each when N > 1), a real NGINX in front of
them (rendered from nginx/nginx.conf into a temporary prefix, loopback only; optional with one
worker) and the gateway pointed at it. Prints the URL of the demo page; a worker that dies is
started again (as compose's restart policy would); Ctrl-C stops everything.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from launcher.nginx import NginxProcess
from launcher.processes import REPO_ROOT, ManagedProcess, gateway_process, worker_process


def worker_env(count: int) -> dict[str, str]:
    """Several workers share the machine's cores: one model thread each, unless set."""
    if count > 1 and "ASR_WORKER_CPU_THREADS" not in os.environ:
        return {"ASR_WORKER_CPU_THREADS": "1"}
    return {}


@dataclass
class LocalStack:
    workers: list[ManagedProcess]
    nginx: NginxProcess | None = None
    gateway: ManagedProcess | None = None
    log_dir: Path | None = None
    worker_envs: list[dict[str, str]] = field(default_factory=list)

    @property
    def upstream_url(self) -> str:
        """What the gateway talks to: NGINX, or the single worker."""
        return self.nginx.url if self.nginx else self.workers[0].url

    @property
    def processes(self) -> list[ManagedProcess]:
        return [*self.workers, *(p for p in (self.nginx, self.gateway) if p is not None)]

    def restart_worker(self, index: int, timeout: float = 120.0) -> ManagedProcess:
        """Start worker `index` again on its port (after a crash or a kill) and wait for it."""
        old = self.workers[index]
        old.kill()
        port = int(old.url.rsplit(":", 1)[1])
        env = self.worker_envs[index] if index < len(self.worker_envs) else {}
        new = worker_process(port, env=env, log_dir=self.log_dir, name=old.name).start()
        self.workers[index] = new
        return new.wait_ready(timeout)

    def stop(self) -> None:
        """Gateway first (no new windows), then NGINX, then the workers."""
        for process in reversed(self.processes):
            process.stop()  # NGINX copies its logs into log_dir and removes its prefix


def start_stack(
    workers: int = 1,
    *,
    worker_port: int = 8001,
    use_nginx: bool | None = None,
    nginx_port: int = 8080,
    status_port: int = 8081,
    gateway_port: int | None = 8000,
    host: str = "127.0.0.1",
    log_dir: Path | None = None,
    worker_envs: list[dict[str, str]] | None = None,
    worker_ports: Sequence[int] | None = None,
) -> LocalStack:
    """Start and wait for the workers (ports worker_port.., or `worker_ports`), NGINX
    (default: when more than one worker) and the gateway (unless gateway_port is None). On
    failure, what was started is stopped."""
    if workers < 1:
        raise ValueError("at least one worker")
    ports = list(worker_ports or range(worker_port, worker_port + workers))
    envs = worker_envs or [worker_env(workers) for _ in range(workers)]
    if len(ports) != workers or len(envs) != workers:
        raise ValueError("one port and one environment per worker")
    stack = LocalStack(workers=[], log_dir=log_dir, worker_envs=envs)
    try:
        for index, port in enumerate(ports):  # all load their models at once
            name = f"worker-{index + 1}"
            stack.workers.append(
                worker_process(port, env=envs[index], log_dir=log_dir, name=name).start()
            )
        for worker in stack.workers:
            worker.wait_ready(timeout=180)
        if workers > 1 if use_nginx is None else use_nginx:
            servers = [w.url.removeprefix("http://") for w in stack.workers]
            stack.nginx = NginxProcess(servers, nginx_port, status_port, log_dir=log_dir)
            stack.nginx.start().wait_ready(timeout=30)
        if gateway_port is not None:
            gateway = gateway_process(
                gateway_port, stack.upstream_url, log_dir=log_dir, name="gateway"
            )
            gateway.argv[gateway.argv.index("--host") + 1] = host
            stack.gateway = gateway.start().wait_ready(timeout=60)
    except BaseException:
        stack.stop()
        raise
    return stack


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--host", default="127.0.0.1", help="the gateway's bind address")
    parser.add_argument("--port", type=int, default=8000, help="the gateway's port")
    parser.add_argument("--worker-port", type=int, default=8001, help="first worker's port")
    parser.add_argument("--nginx-port", type=int, default=8080)
    parser.add_argument("--status-port", type=int, default=8081, help="NGINX stub_status")
    nginx = parser.add_mutually_exclusive_group()
    nginx.add_argument("--nginx", dest="nginx", action="store_true", default=None)
    nginx.add_argument("--no-nginx", dest="nginx", action="store_false")
    parser.add_argument("--log-dir", type=Path, default=REPO_ROOT / ".run")
    args = parser.parse_args(argv)
    if args.workers > 1 and args.nginx is False:
        parser.error("more than one worker needs NGINX in front of them")

    try:  # Ctrl-C while starting: KeyboardInterrupt, and start_stack stops what it started
        stack = start_stack(
            args.workers,
            worker_port=args.worker_port,
            use_nginx=args.nginx,
            nginx_port=args.nginx_port,
            status_port=args.status_port,
            gateway_port=args.port,
            host=args.host,
            log_dir=args.log_dir,
        )
    except (OSError, RuntimeError, TimeoutError) as exc:
        print(f"the stack did not start: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        upstream = f"NGINX {stack.upstream_url} -> " if stack.nginx else ""
        workers = ", ".join(w.url for w in stack.workers)
        print(
            f"\n  Demo page: http://{args.host}:{args.port}/"
            f"\n  Workers: {upstream}{workers}"
            f"\n  Logs: {args.log_dir}/   (Ctrl-C stops everything)\n",
            flush=True,
        )
        return supervise(stack, lambda: stopping)
    finally:
        stack.stop()


def supervise(stack: LocalStack, stopping: Callable[[], bool]) -> int:
    """Until asked to stop: restart dead workers; a dead gateway or NGINX ends the stack."""
    while not stopping():
        for index, worker in enumerate(stack.workers):
            if not worker.alive and not stopping():
                print(f"{worker.name} exited; starting it again", file=sys.stderr, flush=True)
                try:
                    stack.restart_worker(index)
                except (RuntimeError, TimeoutError) as exc:
                    print(f"{worker.name} did not come back: {exc}", file=sys.stderr)
                    return 1
        for process in (stack.nginx, stack.gateway):
            if process is not None and not process.alive and not stopping():
                print(f"{process.name} exited:\n{process.tail()}", file=sys.stderr)
                return 1
        time.sleep(0.5)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
