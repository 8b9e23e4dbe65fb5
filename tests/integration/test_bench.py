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
