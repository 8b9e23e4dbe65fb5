"""Quality and latency of each profile: every clip streamed on the real-time schedule, one
session at a time (so nothing else competes for the worker), scored against the human
reference (WER) and against the same model's whole-file text (quality)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from bench.clips import WholeFile, WholeFileCache, pcm16
from bench.latency import Distribution, reference_words, timed_events, word_latencies
from bench.scoring import Clip, quality, wer
from bench.session_runner import SessionRecord, run_session


@dataclass(frozen=True)
class Row:
    name: str
    start: dict[str, Any]  # the `start` fields (language is added per clip)


# batch profiles without partials (the reference's table); partials and the stream mode
# are rows of their own
ROWS: dict[str, Row] = {
    r.name: r
    for r in (
        Row("max_quality", {"profile": "max_quality", "partials": False}),
        Row("balanced", {"profile": "balanced", "partials": False}),
        Row("responsive", {"profile": "responsive", "partials": False}),
        Row("ultra_fast", {"profile": "ultra_fast", "partials": False}),
        Row("balanced+partials", {"profile": "balanced", "partials": True}),
        Row("stream", {"mode": "stream"}),
    )
}


async def run_rows(
    ws_url: str, clips: list[Clip], rows: list[Row], cache: WholeFileCache, frame_sec: float
) -> dict[str, Any]:
    whole = {c.id: cache.get(c) for c in clips}  # before streaming: nothing else runs meanwhile
    out: dict[str, Any] = {"whole_file": whole_file_row(clips, cache), "rows": []}
    for row in rows:
        sessions: list[dict[str, Any]] = []
        unavailable: str | None = None
        for clip in clips:
            start = {**row.start, "language": clip.language}
            record = await run_session(ws_url, pcm16(clip.path), start, frame_sec, label=clip.id)
            if record.refused is not None:
                unavailable = f"{record.refused.get('code')}: {record.refused.get('message')}"
                break
            sessions.append(score_session(record, clip, whole[clip.id]))
        out["rows"].append(aggregate(row, sessions, unavailable))
    return out


def score_session(record: SessionRecord, clip: Clip, whole: WholeFile) -> dict[str, Any]:
    lat = word_latencies(
        reference_words(whole.segments), timed_events(record.events), record.frame_sec,
        record.n_frames,
    )  # fmt: skip
    text = record.text()
    ttft = record.first_text_at()
    return {
        "clip": clip.id,
        "language": clip.language,
        "audio_sec": round(record.audio_sec, 3),
        "ok": record.ok,
        "failure": record.failure,
        "errors": [f"{e.get('code')}: {e.get('message')}" for e in record.errors],
        "config": (record.ready or {}).get("config", {}),
        "text": text,
        "reference": clip.reference_text,
        "whole_file_text": whole.text,
        "wer": round(wer(clip.reference_text, text), 4),
        "quality": round(quality(text, whole.text), 4),
        "ref_words": len(lat.reference),
        "matched_fraction": round(lat.matched_fraction, 4),
        "seen_only_in_partials": lat.seen_only_in_partials,
        "final_latency": [round(v, 4) for v in lat.final_values()],
        "first_latency": [round(v, 4) for v in lat.first_values()],
        "first_word_latency_sec": _r(lat.first_word_latency()),
        "time_to_first_text_sec": _r(ttft),
        "stop_to_end_sec": _r(record.stop_to_end),
        "max_send_lateness_sec": _r(max(record.send_lateness, default=0.0)),
    }


def aggregate(row: Row, sessions: list[dict[str, Any]], unavailable: str | None) -> dict[str, Any]:
    result: dict[str, Any] = {"name": row.name, "start": row.start}
    if unavailable is not None:
        return {**result, "available": False, "reason": unavailable}
    by_lang: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for s in sessions:
        by_lang[s["language"]].append(s)
    config = sessions[0]["config"] if sessions else {}
    final = [v for s in sessions for v in s["final_latency"]]
    first = [v for s in sessions for v in s["first_latency"]]
    matched = sum(len(s["final_latency"]) for s in sessions)
    ref_words = sum(s["ref_words"] for s in sessions)
    return {
        **result,
        "available": True,
        "mode": config.get("mode"),
        "partials": config.get("partials"),
        "window_sec": config.get("batch_window_sec"),
        "max_window_sec": config.get("max_batch_window_sec"),
        "beam_size": config.get("beam_size"),
        "best_of": config.get("best_of"),
        "wer": _pooled(sessions, "reference", "text"),
        "wer_by_language": {
            lang: _pooled(items, "reference", "text") for lang, items in sorted(by_lang.items())
        },
        "quality": round(1.0 - _pooled(sessions, "whole_file_text", "text"), 4),
        "quality_by_language": {
            lang: round(1.0 - _pooled(items, "whole_file_text", "text"), 4)
            for lang, items in sorted(by_lang.items())
        },
        "final_latency": Distribution.of(final).as_dict(),
        "first_latency": Distribution.of(first).as_dict(),
        "matched_fraction": round(matched / ref_words, 4) if ref_words else 0.0,
        "first_word_latency": Distribution.of(
            s["first_word_latency_sec"] for s in sessions if s["first_word_latency_sec"] is not None
        ).as_dict(),
        "time_to_first_text": Distribution.of(
            s["time_to_first_text_sec"] for s in sessions if s["time_to_first_text_sec"] is not None
        ).as_dict(),
        "stop_to_end": Distribution.of(
            s["stop_to_end_sec"] for s in sessions if s["stop_to_end_sec"] is not None
        ).as_dict(),
        "failed_sessions": sum(not s["ok"] for s in sessions),
        "sessions": sessions,
    }


def whole_file_row(clips: list[Clip], cache: WholeFileCache) -> dict[str, Any]:
    items = [
        {"language": c.language, "reference": c.reference_text, "text": cache.get(c).text}
        for c in clips
    ]
    by_lang: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item in items:
        by_lang[item["language"]].append(item)
    return {
        "wer": _pooled(items, "reference", "text"),
        "wer_by_language": {
            lang: _pooled(group, "reference", "text") for lang, group in sorted(by_lang.items())
        },
        "clips": cache.as_dict(),
    }


def _pooled(items: list[dict[str, Any]], ref_key: str, hyp_key: str) -> float:
    if not items:
        return 0.0
    return round(wer([i[ref_key] for i in items], [i[hyp_key] for i in items]), 4)


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
