"""Worker metrics (asr_worker_*), in a registry per app so tests can run several apps."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from asr.gpu import GpuCollector

# windows cost 0.05-1 s, whole files up to tens of seconds
DURATION_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 1.5, 2, 3, 5, 7.5, 10, 15, 20, 30)
BATCH_SIZE_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64)
BATCH_WAIT_BUCKETS = (0.0001, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1)
QUEUE_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30)
# a window's share of a stage: a millisecond of alignment to seconds of CPU encoding
STAGE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.4, 0.75, 1, 2, 5)
# where a request's model call went (contracts.worker.Timing); "other": the rest of the call
STAGE_LABELS = ("features", "encoder", "decoder", "align", "other")


class WorkerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "asr_worker_requests",
            "Requests by endpoint and HTTP status",
            ["endpoint", "status"],
            registry=r,
        )
        self.inference = Histogram(
            "asr_worker_inference_seconds",
            "Model time per request",
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.queue = Histogram(
            "asr_worker_queue_seconds",
            "Time waiting for a model slot",
            ["priority"],
            buckets=QUEUE_BUCKETS,
            registry=r,
        )
        self.audio = Counter("asr_worker_audio_seconds", "Seconds of audio transcribed", registry=r)
        self.in_flight = Gauge("asr_worker_in_flight", "Requests being handled", registry=r)
        self.waiting = Gauge(
            "asr_worker_queue_depth", "Requests waiting for a model slot", registry=r
        )
        self.batch_size = Histogram(
            "asr_worker_batch_size",
            "Requests per batched model call (batching on)",
            buckets=BATCH_SIZE_BUCKETS,
            registry=r,
        )
        self.batch_wait = Histogram(
            "asr_worker_batch_wait_seconds",
            "Time a batch held its slot waiting for mates (0 when dispatched at once)",
            buckets=BATCH_WAIT_BUCKETS,
            registry=r,
        )
        self.model_calls = Counter(
            "asr_worker_model_inputs",
            "Inputs that reached the model, by path (transcribe, window, batch, draft); requests "
            "without speech never do",
            ["path"],
            registry=r,
        )
        for path in ("transcribe", "window", "batch", "draft"):
            self.model_calls.labels(path)
        self.stage = Histogram(
            "asr_worker_stage_seconds",
            "A request's share of its model call, by stage: features (mel), encoder, decoder, "
            "align (CTranslate2's calls), other (the rest of the call); a batch's stage times "
            "are shared equally by its windows",
            ["stage"],
            buckets=STAGE_BUCKETS,
            registry=r,
        )
        for stage in STAGE_LABELS:
            self.stage.labels(stage)
        self.pack_redone = Counter(
            "asr_worker_pack_redone",
            "Packed windows decoded again alone (their words missed their speech)",
            registry=r,
        )
        self.gpu = GpuCollector()
        if self.gpu.available:
            r.register(self.gpu)
