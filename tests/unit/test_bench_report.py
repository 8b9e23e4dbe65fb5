"""The benchmark's report (markdown, plots, docs section), stub worker and level verdicts, on
synthetic results (no services)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from bench.report import BEGIN, END, publish, render, write_report
from bench.scoring import Clip
from bench.stub_worker import response_for
from bench.throughput import passes, plan
from contracts.worker import TranscriptionResponse


def dist(p50: float, p95: float, values: list[float] | None = None) -> dict[str, Any]:
    return {"n": len(values or [1]), "p50": p50, "p95": p95, "p99": p95, "mean": p50,
            "max": p95, **({"values": values} if values else {})}  # fmt: skip


def row(name: str, window: float, partials: bool = False) -> dict[str, Any]:
    return {
        "name": name, "available": True, "start": {}, "mode": "batch", "partials": partials,
        "window_sec": window, "max_window_sec": 2 * window, "beam_size": 5, "best_of": 1,
        "wer": 0.12, "wer_by_language": {"en": 0.08, "pt": 0.14}, "quality": 0.93,
        "quality_by_language": {}, "final_latency": dist(1.9, 3.1, [1.5, 1.9, 2.4, 3.1]),
        "first_latency": dist(0.9, 1.5, [0.6, 0.9, 1.5]), "matched_fraction": 0.91,
        "first_word_latency": dist(1.2, 1.2), "time_to_first_text": dist(2.5, 2.9),
        "stop_to_end": dist(0.8, 1.1), "failed_sessions": 0,
        "sessions": [{"final_latency": [1.5, 1.9, 2.4, 3.1], "first_latency": [0.6, 0.9, 1.5]}],
    }  # fmt: skip


def level(sessions: int, p95: float, ok: bool = True) -> dict[str, Any]:
    return {
        "sessions": sessions, "sessions_per_worker": sessions, "audio_sec": 30.0 * sessions,
        "final_latency": dist(p95 / 2, p95), "matched_fraction": 0.9,
        "quality_vs_whole_file": 0.9, "stop_to_end": dist(0.7, 0.9), "failed_sessions": 0,
        "errors": 0, "error_codes": [], "client_max_send_lateness_sec": 0.01, "worker": {},
        "worker_cpu_rtf": 0.35, "passes": ok, "verdict": "ok" if ok else "p95 too high",
    }  # fmt: skip


def result() -> dict[str, Any]:
    return {
        "run": {"timestamp": "20260101T000000Z", "kind": "full", "argv": [], "duration_sec": 9.0},
        "machine": {"cpu_model": "Test CPU", "logical_cores": 2, "usable_cores": 2, "ram_gb": 8,
                    "os": "Linux", "python": "3.11", "ctranslate2": "4", "faster_whisper": "1.2",
                    "load_avg_1m": 0.1},
        "worker": {"model": "embedded", "device": "cpu", "compute_type": "int8"},
        "stack": {"workers": 1, "threads_per_worker": None},
        "quality": {
            "whole_file": {"wer": 0.1, "wer_by_language": {"pt": 0.12}, "clips": {}},
            "rows": [row("balanced", 2.0), row("balanced+partials", 2.0, partials=True),
                     {"name": "stream", "available": False, "reason": "invalid_config: no"}],
        },
        "throughput": {"start": {"profile": "balanced"}, "pool": ["a"], "session_sec": 30.0,
                       "bound_sec": 3.0, "stack": {},
                       "levels": [level(1, 2.0), level(2, 3.5, False)],
                       "max_sessions": 1, "max_sessions_per_worker": 1.0},
        "file_endpoint": {
            "clip": "long", "audio_sec": 394.0,
            "cases": [{"config": "1x1", "available": True, "wall_sec": 80.0, "rtf": 0.2, "wer": 0.1,
                       "vs_direct": 0.04},
                      {"config": "2x1", "available": False, "reason": "no NGINX upstream"}],
            "direct": {"1": {"threads": 1, "wall_sec": 77.0, "rtf": 0.195, "wer": 0.1}},
        },
        "worker_overhead": {
            "threads": 0,
            "wer": {"worker": 0.1, "direct": 0.1, "difference": 0.0, "within_target": True},
            "time": {"worker_sec": 10.4, "direct_sec": 10.0, "extra": 0.04, "within_target": True},
            "window_2s": {"worker": dist(0.4, 0.5), "direct": dist(0.38, 0.45)},
            "rtf_60s": {"worker": 0.2, "direct": 0.19},
            "memory": {"clip": "long", "audio_sec": 394.0, "rss_after_mb": 420.0,
                       "rss_peak_mb": 450.0, "within_target": True},
        },
        "capacity": {"session_sec": 40.0, "start": {}, "stub_sleep_ms": 50.0, "levels": [{
            "sessions": 100, "gateway_busy": {"cpu_percent_of_core": 30.0, "rss_mean_mb": 150.0},
            "cpu_percent_per_session": 0.3, "rss_mb_per_session": 0.8,
            "rss_mb_per_session_beyond_buffer": 0.3, "health_lag": dist(0.002, 0.01),
            "ack_delay": dist(0.003, 0.02), "client_cpu_percent": 40.0,
            "client_saturated": False, "failed_sessions": 0}]},
    }  # fmt: skip


def test_render_has_the_profile_table_and_every_section() -> None:
    text = render(result(), {"latency_vs_wer": "x.png"})
    assert "| profile | window | beam | best_of | final latency p50 / p95 (s)" in text
    assert "| balanced | 2.0 s | 5 | 1 | 1.90 / 3.10 | (no partials) | 12.0% |" in text
    assert "| balanced+partials | 2.0 s | 5 | 1 | 1.90 / 3.10 | 0.90 / 1.50 |" in text
    assert "| stream |" in text and "unavailable: invalid_config" in text
    assert "| whole file |" in text
    assert "Most sessions with p95 final latency <= 3 s: 1" in text
    assert "| 1x1 | 80.0 | 0.200 | 10.0% | +4.0% |" in text and "unavailable: no NGINX" in text
    assert "worker RSS after long (394 s)" in text
    assert "| 100 | 30.0 | 0.300% |" in text
    assert "Test CPU" in text and "![latency_vs_wer](x.png)" in text


def test_write_report_and_publish(tmp_path: Path) -> None:
    report = write_report(result(), tmp_path / "run")
    names = {p.name for p in (tmp_path / "run").iterdir()}
    assert {"report.md", "latency_vs_wer.png", "latency_cdf.png", "sessions_vs_latency.png",
            "capacity.png"} <= names  # fmt: skip
    assert "![latency_cdf](latency_cdf.png)" in report.read_text()
    doc = tmp_path / "benchmarks.md"
    doc.write_text(f"# Benchmarks\n\nintro\n\n{BEGIN}\nold\n{END}\n\nafter\n")
    publish(result(), doc, tmp_path / "benchmarks")
    text = doc.read_text()
    assert text.startswith("# Benchmarks\n\nintro") and text.rstrip().endswith("after")
    assert "old" not in text and text.count(BEGIN) == 1
    assert "![latency_cdf](benchmarks/latency_cdf.png)" in text
    assert (tmp_path / "benchmarks" / "latency_cdf.png").stat().st_size > 1000
    # a partial run above the earlier run it adds to: both kept, the earlier plots in a folder
    partial = result() | {"run": result()["run"] | {"timestamp": "20260102T000000Z"}}
    earlier = result() | {"run": result()["run"] | {"timestamp": "20260101T000000Z"}}
    publish([partial, earlier], doc, tmp_path / "benchmarks")
    text = doc.read_text()
    assert text.count(BEGIN) == 1 and text.index("## Results\n") < text.index("## Results of an")
    assert "Run `20260102T000000Z`" in text and "Run `20260101T000000Z`" in text
    assert "![latency_cdf](benchmarks/20260101T000000Z/latency_cdf.png)" in text
    assert (tmp_path / "benchmarks" / "20260101T000000Z" / "latency_cdf.png").exists()


def test_stub_response_is_a_valid_worker_answer_with_words_near_the_end() -> None:
    body = TranscriptionResponse.model_validate_json(response_for(7.0))
    words = body.segments[0].words
    assert body.duration_sec == 7.0 and words[-1].end <= 7.0 - 0.12 and words[0].start > 5.0


def test_level_verdicts() -> None:
    assert passes(level(1, 2.0), 3.0) == (True, "ok")
    assert passes(level(4, 3.5), 3.0)[0] is False
    behind = level(8, 2.0) | {"stop_to_end": dist(5.0, 6.0)}
    assert passes(behind, 3.0) == (False, "behind real time: stop-to-end p50 5.00 s")
    failed = level(8, 2.0) | {"failed_sessions": 2}
    assert passes(failed, 3.0)[0] is False


def test_plan_spreads_clips_offsets_and_starts() -> None:
    clips = [Clip(c, Path(c), "pt", d, "", "", "") for c, d in (("a", 85.0), ("b", 10.0))]
    planned = plan(clips, 4, 30.0, random.Random(0))
    assert [p.clip.id for p in planned] == ["a", "b", "a", "b"]
    assert planned[0].offset_sec != planned[2].offset_sec
    assert all(0 <= p.offset_sec <= 55.0 for p in planned if p.clip.id == "a")
    assert [p.duration_sec for p in planned] == [30.0, 10.0, 30.0, 10.0]
    assert len({p.delay_sec for p in planned}) == 4
