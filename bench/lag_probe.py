"""Event-loop lag of a service, seen from outside: time `GET /health` every `interval` ms over
one keep-alive connection, from a process of its own (so the load generator's own loop delay
does not count). A handler that does nothing answers as late as the loop is busy.

python -m bench.lag_probe http://127.0.0.1:8000 --seconds 30 > samples.json
prints [[monotonic_time, seconds], ...] (CLOCK_MONOTONIC is system-wide on Linux, so the bench
can keep the samples of its steady window)
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time

import httpx


def start_probe(url: str, seconds: float, interval_ms: float = 50.0) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.lag_probe",
            url,
            "--seconds",
            str(seconds),
            "--interval-ms",
            str(interval_ms),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )


def probe_samples(
    proc: subprocess.Popen[str], timeout_sec: float = 60
) -> list[tuple[float, float]]:
    out, _ = proc.communicate(timeout=timeout_sec)
    return [(t, v) for t, v in json.loads(out or "[]")]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="time GET /health at a fixed rate")
    parser.add_argument("url")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--interval-ms", type=float, default=50.0)
    args = parser.parse_args(argv)
    samples: list[tuple[float, float]] = []
    deadline = time.monotonic() + args.seconds
    stopping: list[bool] = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))  # stop early, still report
    with httpx.Client(base_url=args.url, timeout=10.0) as client:
        while time.monotonic() < deadline and not stopping:
            started = time.monotonic()
            try:
                client.get("/health")
                samples.append((started, time.monotonic() - started))
            except httpx.HTTPError:
                samples.append((started, 10.0))
            time.sleep(max(0.0, args.interval_ms / 1000 - (time.monotonic() - started)))
    json.dump([[round(t, 4), round(v, 5)] for t, v in samples], sys.stdout)


if __name__ == "__main__":
    main()
