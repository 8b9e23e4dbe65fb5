"""The worker load profile's pure parts: which windows it sends, and how a level's records
become windows/s, latency, the batch histogram and the per-window stage breakdown."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.scoring import Clip
from bench.worker_load import Record, Window, cut_windows, summarize, window_options


def clip(cid: str, seconds: float, language: str = "pt") -> Clip:
    return Clip(cid, Path(f"/eval/{cid}.wav"), language, seconds, "", "", "")


def test_windows_round_robin_over_clips_long_enough() -> None:
    clips = [clip("long", 22.0), clip("short", 5.0), clip("mid", 14.5, "en")]
    windows = cut_windows(clips, 7.0, 5)
    assert [(w.clip_id, w.offset_sec) for w in windows] == [
        ("long", 0.0),
        ("mid", 0.0),
        ("long", 7.0),
        ("mid", 7.0),
        ("long", 14.0),
    ]
    assert {w.duration_sec for w in windows} == {7.0}
    assert windows[1].language == "en"
    again = cut_windows(clips, 7.0, 7)  # the pool ran out: from the start again
    assert again[5:] == again[:2]
    with pytest.raises(ValueError):
        cut_windows([clip("short", 5.0)], 7.0, 3)


def test_windows_carry_the_gateways_final_options() -> None:
    options = window_options("pt", 5)
    assert (options.language, options.beam_size, options.temperature) == ("pt", 5, 0.0)
    assert options.word_timestamps and not options.vad_filter


def record(latency: float, batch: int, **timing: float) -> Record:
    window = Window("c", "pt", Path("/c.wav"), 0.0, 7.0)
    return Record(window, latency, 200, 0, {"batch_size": batch, **timing})


def test_summary_of_a_level() -> None:
    stages = {"features_ms": 10.0, "encoder_ms": 300.0, "decoder_ms": 500.0, "align_ms": 50.0}
    records = [
        record(1.0, 1, inference_ms=900.0, decode_ms=5.0, queue_ms=0.0, **stages),
        *[
            record(2.0, 3, inference_ms=2700.0, decode_ms=5.0, queue_ms=100.0, **stages)
            for _ in range(3)
        ],
        Record(Window("c", "pt", Path("/c.wav"), 0.0, 7.0), 0.5, 503, 2, {}, "busy"),
    ]
    out = summarize(records, wall_sec=4.0, in_flight=4)
    assert out["windows"] == 4 and out["failed"] == 1 and out["rejected_503"] == 2
    assert out["windows_per_sec"] == 1.0
    assert out["latency"]["p50"] == 2.0 and out["latency"]["n"] == 4
    assert out["batches"] == {"1": 1.0, "3": 1.0} and out["mean_batch_size"] == 2.5
    w = out["per_window"]
    assert w["model_ms"] == 850.0  # encoder + decoder + align; features are not model time
    assert w["worker_share_ms"] == 1000.0  # 4 s of one slot for 4 windows
    assert w["else_ms"] == 1000.0 - 860.0
    assert out["non_model_share"] == pytest.approx(0.15)
    b = out["breakdown"]
    assert b["call_ms"] == 900.0 and b["call_other_ms"] == 40.0
    assert b["http_ms"] == 5.0 and b["queue_ms"] == 75.0
    # two model slots: each window's share of the worker doubles
    assert summarize(records, 4.0, 4, slots=2)["per_window"]["worker_share_ms"] == 2000.0


def test_summary_without_answers() -> None:
    out = summarize([], wall_sec=1.0, in_flight=2)
    assert out["windows"] == 0 and out["windows_per_sec"] == 0.0
    assert out["non_model_share"] is None and out["per_window"]["worker_share_ms"] is None
