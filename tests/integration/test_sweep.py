"""The end-to-end sweep at a tiny size: sessions through NGINX to two gateways, through the
workers' NGINX to a batching worker, every second sent transcribed, the figures it reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.__main__ import main

pytestmark = [pytest.mark.nginx, pytest.mark.timeout(170)]


def test_tiny_sweep_through_two_gateways_behind_nginx(tmp_path: Path) -> None:
    argv = [
        "--sections", "sweep", "--sweep-sessions", "3", "--sweep-gateways", "2",
        "--sweep-sec", "6", "--sweep-clips", "fleurs-pt-000,fleurs-en-002",
        "--sweep-bound-sec", "60", "--worker-env", "ASR_WORKER_BATCHING=on",
        "--out", str(tmp_path),
    ]  # fmt: skip
    assert main(argv) == 0
    [json_path] = tmp_path.glob("*.json")
    sweep = json.loads(json_path.read_text())["sweep"]
    assert sweep["stack"]["gateways"] == 2 and sweep["stack"]["workers"] == 1
    [level] = sweep["levels"]
    assert level["sessions"] == 3
    # nothing lost: every session ended, no error event, every second it sent transcribed
    assert level["failed_sessions"] == 0 and level["errors"] == 0
    assert level["incomplete_sessions"] == 0
    assert level["final_latency"]["n"] > 0 and level["passes"], level["verdict"]
    # NGINX spread the sessions over both gateways (least connections, sessions overlapping)
    assert sorted(level["sessions_per_gateway"]) == [1, 2]
    workers = level["workers"]
    assert workers["requests"] > 0 and workers["batches"] > 0 and workers["rejected_503"] == 0
    assert workers["mean_batch_size"] >= 1 and workers["stage_sec"]["encoder"] > 0
    assert level["gpu_utilization"] is None  # CPU: no GPU metrics
    assert sweep["max_sessions"] == 3
    report = (json_path.with_suffix("") / "report.md").read_text()
    assert "### End-to-end sweep" in report and "| 3 |" in report
