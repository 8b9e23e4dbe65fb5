"""Gateway metrics: the reference names (asr_batch_duration_seconds, asr_sessions_total,
asr_errors_total) plus sessions, audio and word latency. One registry per app."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.1, 0.25, 0.5, 0.75, 1, 1.25, 1.5, 2, 2.5, 3, 4, 5, 7.5, 10, 15, 20, 30)


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.batch_duration = Histogram(
            "asr_batch_duration_seconds",
            "Window cut to transcript sent",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.sessions = Counter("asr_sessions", "WebSocket sessions started", registry=r)
        self.errors = Counter("asr_errors", "Errors by kind", ["kind"], registry=r)
        self.active_sessions = Gauge("asr_active_sessions", "Open sessions", registry=r)
        self.audio = Counter(
            "asr_audio_seconds",
            "Audio seconds by stage (received, transcribed)",
            ["stage"],
            registry=r,
        )
        self.final_word_latency = Histogram(
            "asr_final_word_latency_seconds",
            "Word end received to the transcript that finalises it, sent",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.file_requests = Counter(
            "asr_file_requests", "File transcriptions by outcome", ["status"], registry=r
        )
        self.windows = Counter("asr_windows", "Windows sent to the pool", ["kind"], registry=r)
        for stage in ("received", "transcribed"):
            self.audio.labels(stage)
        for kind in ("final", "partial"):
            self.windows.labels(kind)

    # ---- the session core's Meter (api/core/steps.py) ------------------------------------

    def received(self, seconds: float) -> None:
        self.audio.labels("received").inc(seconds)

    def window_sent(self, kind: str) -> None:
        self.windows.labels(kind).inc()

    def window_done(self, seconds: float) -> None:
        self.batch_duration.observe(seconds)

    def transcribed(self, seconds: float) -> None:
        self.audio.labels("transcribed").inc(seconds)

    def word_latency(self, seconds: float) -> None:
        self.final_word_latency.observe(seconds)

    def error(self, kind: str) -> None:
        self.errors.labels(kind).inc()
