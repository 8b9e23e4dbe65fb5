"""The sweep's pure part: what the workers did between two scrapes of their /metrics."""

from __future__ import annotations

from bench.sweep import worker_figures


def test_worker_figures_from_two_scrapes() -> None:
    def sample(name: str, value: float, **labels: str) -> tuple:
        return (name, tuple(sorted(labels.items()))), value

    before = dict(
        [
            sample("asr_worker_batch_size_count", 10),
            sample("asr_worker_batch_size_sum", 30),
            sample("asr_worker_inference_seconds_sum", 5.0),
            sample("asr_worker_requests_total", 40, endpoint="transcribe", status="200"),
            sample("asr_worker_stage_seconds_sum", 1.0, stage="encoder"),
        ]
    )
    after = dict(
        [
            sample("asr_worker_batch_size_count", 14),
            sample("asr_worker_batch_size_sum", 62),
            sample("asr_worker_inference_seconds_sum", 13.0),
            sample("asr_worker_requests_total", 72, endpoint="transcribe", status="200"),
            sample("asr_worker_requests_total", 3, endpoint="transcribe", status="503"),
            sample("asr_worker_stage_seconds_sum", 3.5, stage="encoder"),
        ]
    )
    out = worker_figures(before, after, seconds=10.0)
    assert out["batches"] == 4 and out["mean_batch_size"] == 8.0
    assert out["requests"] == 35 and out["rejected_503"] == 3
    assert out["busy_fraction"] == 0.8 and out["stage_sec"]["encoder"] == 2.5
    assert out["stage_sec"]["decoder"] == 0.0
