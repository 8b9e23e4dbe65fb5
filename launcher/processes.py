"""Start and stop the stack's processes for real (workers, gateway, nginx).

Used by `make run`, by the integration tests and by the benchmark: one way to start a service,
wait until it answers `GET /ready`, and stop it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import cast

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return cast(int, sock.getsockname()[1])  # typeshed types the address Any


class ManagedProcess:
    """A child process with its output in a log file and a readiness URL to poll."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        ready_url: str | None,
        env: dict[str, str] | None = None,
        log_dir: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = argv
        self.ready_url = ready_url
        self.env = {**os.environ, **(env or {})}
        self.log_path = (log_dir or Path("/tmp")) / f"{name}.log"
        # http://host:port of the service, derived from its readiness URL
        self.url = ready_url.rsplit("/", 1)[0] if ready_url else ""
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ManagedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            self.argv, env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT
        )
        log.close()
        return self

    def wait_ready(self, timeout: float = 60.0) -> ManagedProcess:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.proc.returncode}:\n{self.tail()}"
                )
            if self.ready_url is None:
                return self
            try:
                if httpx.get(self.ready_url, timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{self.name} not ready after {timeout:.0f} s:\n{self.tail()}")

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.alive:
            assert self.proc is not None
            self.proc.kill()
            self.proc.wait()

    def stop(self, timeout: float = 15.0) -> None:
        if not self.alive:
            return
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def worker_process(
    port: int, env: dict[str, str] | None = None, log_dir: Path | None = None, name: str = ""
) -> ManagedProcess:
    return ManagedProcess(
        name or f"worker-{port}",
        [sys.executable, "-m", "asr", "--host", "127.0.0.1", "--port", str(port)],
        f"http://127.0.0.1:{port}/ready",
        env=env,
        log_dir=log_dir,
    )


def gateway_process(
    port: int,
    upstream_url: str,
    env: dict[str, str] | None = None,
    log_dir: Path | None = None,
    name: str = "",
) -> ManagedProcess:
    return ManagedProcess(
        name or f"gateway-{port}",
        [sys.executable, "-m", "api", "--host", "127.0.0.1", "--port", str(port)],
        f"http://127.0.0.1:{port}/ready",
        env={"ASR_UPSTREAM_URL": upstream_url, **(env or {})},
        log_dir=log_dir,
    )
