"""`make run`: the local stack on one machine, without docker.

Starts the CPU worker(s) and the gateway in front of them, prints the URL of the demo page and
stops everything on Ctrl-C.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

from api.processes import REPO_ROOT, ManagedProcess, gateway_process, worker_process


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--worker-port", type=int, default=8001)
    parser.add_argument("--log-dir", type=Path, default=REPO_ROOT / ".run")
    args = parser.parse_args(argv)
    if args.workers != 1:
        print("more than one worker needs the NGINX upstream (not yet available)", file=sys.stderr)
        return 2
    processes: list[ManagedProcess] = []
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        worker = worker_process(args.worker_port, log_dir=args.log_dir, name="worker-1").start()
        processes.append(worker)
        worker.wait_ready(timeout=120)
        gateway = gateway_process(args.port, worker.url, log_dir=args.log_dir, name="gateway")
        gateway.argv[gateway.argv.index("127.0.0.1")] = args.host
        processes.append(gateway.start())
        gateway.ready_url = f"http://127.0.0.1:{args.port}/ready"
        gateway.wait_ready(timeout=60)
        print(f"\n  Demo page: http://{args.host}:{args.port}/\n  Logs: {args.log_dir}/\n")
        while not stopping and all(p.alive for p in processes):
            time.sleep(0.5)
        return 0 if stopping else 1
    finally:
        for process in reversed(processes):
            process.stop()


if __name__ == "__main__":
    raise SystemExit(main())
