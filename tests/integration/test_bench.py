"""The benchmark harness end to end: the quick run against the session's real stack, and a
tiny capacity run against its own gateway + stub worker. Full runs are never part of the suite."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from bench.__main__ import QUICK_CLIP, main
from bench.capacity import run_capacity
from launcher.processes import ManagedProcess


def test_quick_run_against_the_stack(gateway: ManagedProcess, manifest, tmp_path: Path) -> None:
    assert main(["--quick", "--url", gateway.url, "--out", str(tmp_path)]) == 0
    [json_path] = tmp_path.glob("*-quick.json")
    result = json.loads(json_path.read_text())
    assert result["run"]["kind"] == "quick"
    assert result["machine"]["logical_cores"] >= 1 and result["worker"]["model"]
    [row] = result["quality"]["rows"]
    assert row["name"] == "balanced" and row["available"]
    assert (row["window_sec"], row["beam_size"], row["best_of"]) == (2.0, 5, 1)
    assert row["partials"] is False
    [session] = row["sessions"]
    assert session["clip"] == QUICK_CLIP and session["ok"] and not session["errors"]
    # "eu quero uma coxinha de frango": the model gets it right whole and streamed
    assert row["wer"] <= 0.2 and result["quality"]["whole_file"]["wer"] <= 0.2
    assert row["quality"] >= 0.8 and row["matched_fraction"] >= 0.8
    # every word is final after its frame left and within the window plus a slow worker's time
    final = row["final_latency"]
    assert final["n"] == len(session["final_latency"]) >= 5
    assert 0.0 < final["p50"] <= final["p95"] < 2.0 + 8.0
    assert 0.0 < row["time_to_first_text"]["p50"] < manifest[QUICK_CLIP].duration_s + 10
    assert 0.0 <= row["stop_to_end"]["p50"] < 10.0
    report_dir = json_path.with_suffix("")
    report = (report_dir / "report.md").read_text()
    assert "| balanced | 2.0 s | 5 | 1 |" in report and "| whole file |" in report
    assert (report_dir / "latency_vs_wer.png").stat().st_size > 1000
    assert (report_dir / "latency_cdf.png").stat().st_size > 1000


@pytest.mark.timeout(90)
def test_tiny_capacity_run(manifest, tmp_path: Path) -> None:
    out = asyncio.run(
        run_capacity(
            [8], manifest["pt-longform-dev"], {"profile": "balanced"}, 8.0, 0.3, tmp_path, 20.0
        )
    )
    [level] = out["levels"]
    assert level["sessions"] == 8 and level["failed_sessions"] == 0 and not level["error_codes"]
    assert level["transcripts"] >= 8  # the stub's words come back through the gateway
    assert level["gateway_busy"]["rss_mean_mb"] > 20 and level["gateway_busy"]["cpu_sec"] > 0
    assert level["health_lag"]["n"] >= 20 and level["ack_delay"]["n"] >= 8
    assert level["health_lag"]["p50"] < 1.0


@pytest.mark.timeout(150)
def test_tiny_worker_load_run_with_its_own_batching_worker(tmp_path: Path) -> None:
    """The profile against a worker it starts (batching on), then the ceiling at batch 1 and
    2: windows/s, latency, batches that formed, stage times the worker reported."""
    argv = [
        "--sections", "worker-load", "--worker-load-windows", "4",
        "--worker-load-in-flight", "4", "--worker-load-window-sec", "2",
        "--worker-load-clips", "jfk,fleurs-en-000", "--ceiling-batches", "1,2",
        "--worker-env", "ASR_WORKER_BATCHING=on", "--worker-env", "ASR_WORKER_MAX_BATCH=4",
        "--worker-env", "ASR_WORKER_BATCH_WAIT_MS=50", "--out", str(tmp_path),
    ]  # fmt: skip
    assert main(argv) == 0
    [json_path] = tmp_path.glob("*.json")
    result = json.loads(json_path.read_text())["worker_load"]
    assert result["worker"]["device"] == "cpu" and result["worker_env"]["ASR_WORKER_BATCHING"]
    [level] = result["levels"]
    assert level["windows"] == 4 and level["failed"] == 0 and level["in_flight"] == 4
    assert level["windows_per_sec"] > 0 and level["latency"]["p50"] > 0
    # four requests at once on a batching worker: they share calls
    assert level["mean_batch_size"] > 1 and sum(
        float(b) * n for b, n in level["batches"].items()
    ) == pytest.approx(4)
    w = level["per_window"]
    assert w["encoder_ms"] > 0 and w["decoder_ms"] > 0 and w["align_ms"] > 0
    assert w["features_ms"] > 0 and w["model_ms"] < w["worker_share_ms"]
    assert 0 < level["non_model_share"] < 1
    rows = {row["batch"]: row for row in result["ceiling"]["batches"]}
    assert set(rows) == {1, 2} and all(r["windows"] == 4 for r in rows.values())
    assert all(r["per_window"]["encoder_ms"] > 0 for r in rows.values())
    # the ceiling decodes the same windows: JFK's first 2 s are "And so my fellow"
    jfk = next(text for wid, text in rows[2]["texts"].items() if wid.startswith("jfk@0"))
    assert "fellow" in jfk.lower()
    report = (json_path.with_suffix("") / "report.md").read_text()
    assert "Worker load" in report
