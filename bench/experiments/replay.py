"""Score a session policy in minutes instead of real time: the gateway's session core replayed
on a virtual clock (api/core/replay.py), every window answered by the worker's engine in this
process, each answer cached on disk by what was asked (audio, options, speech spans), and the
pool's cost per request taken from a cost model of this machine.

    python -m bench.experiments.replay --start '{"profile": "balanced", "partials": false}'
    python -m bench.experiments.replay --material long --start '{"mode": "stream"}' \\
        --set stream_lookahead_sec=1.0

Reports per clip and pooled: WER against the human reference and against the whole-file
transcription of the same model (the bench's "quality"), windows asked for, and final-word
latency on the virtual clock (the bench's definition). The real-time benchmark stays the
judge; this ranks ideas. Material: `short` (the dev set's clips up to 20 s), `bench` (the
benchmark quality section's: every clip up to 120 s), `long` (the
long-form material of docs/benchmarks.md: pt-longform-dev, 120 s excerpts of the two read
recordings, the English clips joined at their own edges).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from api.config import GatewaySettings
from api.core.replay import Run, drive, drive_sessions, make_core
from api.core.steps import WindowRequest
from api.vad_model import find_model, load_model
from bench.latency import reference_words, timed_events, word_latencies
from bench.longform import longform_clips, read_wav
from bench.scoring import REPO_ROOT, Clip, load_manifest, wer
from contracts.audio import SAMPLE_RATE, float_to_pcm16, pcm16_to_float
from contracts.logs import configure_logging
from contracts.worker import DecodeOptions, TranscriptionResponse

CACHE = REPO_ROOT / ".cache" / "replay"
CACHE_VERSION = 3  # part of every answer's key: bump when the worker's decoding changes
# pool seconds per request on this machine (2 cores, base int8): the 30 s encoder plus a
# decoder share that grows with the audio; a draft (partial) pass is far cheaper
COST_BASE_SEC, COST_PER_AUDIO_SEC = 0.30, 0.075
# a live window through asr/window_decode.py, measured here (40 stream passes, 2 threads,
# median 0.47 s): features and overhead, the encoder per second of input (audio + padding),
# and every decoder step, forced prefix tokens included (CTranslate2 steps through them one by
# one; a previous-text prompt before <|startoftranscript|> costs nothing); ~1.6 tokens a word
FAST_BASE_SEC, FAST_PER_INPUT_SEC, FAST_PER_STEP_SEC, TOKENS_PER_WORD = 0.045, 0.006, 0.023, 1.6
GREEDY_STEP_FACTOR = 0.45


def cost_model(engine: Engine) -> Any:
    def cost(request: WindowRequest) -> float:
        seconds = (request.end - request.start) / SAMPLE_RATE
        if request.purpose == "partial":
            return 0.05 + 0.02 * seconds
        if request.options.encoder_pad_sec is not None:  # asr/window_decode.py
            words = sum(len(s.words) for s in engine(request).segments)
            prefix = len((request.options.prefix or "").split())
            steps = 4 + TOKENS_PER_WORD * (prefix + words)
            step = FAST_PER_STEP_SEC * (GREEDY_STEP_FACTOR if request.options.beam_size == 1 else 1)
            return (
                FAST_BASE_SEC
                + FAST_PER_INPUT_SEC * min(30.0, seconds + request.options.encoder_pad_sec)
                + step * steps
            )
        return COST_BASE_SEC + COST_PER_AUDIO_SEC * seconds

    return cost


@dataclass
class Material:
    name: str
    language: str
    audio: np.ndarray  # float32, 16 kHz
    reference: str


def material(kind: str, engine: Engine) -> list[Material]:
    manifest = load_manifest()
    if kind in ("short", "bench"):
        limit = 20.0 if kind == "short" else 120.0  # bench: the quality section's clips
        return [
            Material(c.id, c.language, read_wav(c), c.reference_text)
            for c in manifest.values()
            if c.duration_s <= limit
        ]

    def word_timer(clip: Clip) -> list[tuple[str, float, float]]:
        whole = engine.whole(Material(clip.id, clip.language, read_wav(clip), ""))
        return [(w.word, w.start, w.end) for seg in whole.segments for w in seg.words]

    return [
        Material(c.id, c.language, c.audio, c.reference)
        for c in longform_clips(manifest, word_timer)
    ]


class Engine:
    """The worker's engine in this process, answers cached on disk."""

    def __init__(self) -> None:
        from asr.config import WorkerSettings
        from asr.model import SpeechModel
        from asr.vad import as_spans

        self.model = SpeechModel(WorkerSettings(cpu_threads=2, warmup=False))
        self.as_spans = as_spans
        CACHE.mkdir(parents=True, exist_ok=True)
        self.calls = 0

    def _cached(
        self, key: str, compute: Callable[[], TranscriptionResponse]
    ) -> TranscriptionResponse:
        path = CACHE / f"{hashlib.sha1(key.encode()).hexdigest()}.json"
        if path.exists():
            return TranscriptionResponse.model_validate_json(path.read_text())
        result = compute()
        result.timing.inference_ms = 0.0
        path.write_text(result.model_dump_json())
        self.calls += 1
        return result

    def __call__(self, request: WindowRequest) -> TranscriptionResponse:
        digest = hashlib.sha1(request.audio.tobytes()).hexdigest()
        key = json.dumps(
            [
                request.purpose == "partial",
                digest,
                request.options.model_dump(exclude_defaults=True),
                request.speech_spans,
                CACHE_VERSION,
            ]
        )
        spans = None if request.speech_spans is None else self.as_spans(request.speech_spans)
        audio = pcm16_to_float(request.audio)
        if request.purpose == "partial":
            return self._cached(key, lambda: self.model.draft(audio, request.options, spans))
        return self._cached(key, lambda: self.model.transcribe(audio, request.options, spans))

    def whole(self, item: Material) -> TranscriptionResponse:
        pcm = float_to_pcm16(item.audio)
        key = json.dumps(["whole", hashlib.sha1(pcm.tobytes()).hexdigest(), item.language])
        options = DecodeOptions(language=item.language, beam_size=5)
        return self._cached(key, lambda: self.model.transcribe(pcm16_to_float(pcm), options))


def score(
    run: Run, item: Material, whole: TranscriptionResponse, frame_sec: float
) -> dict[str, Any]:
    text = run.text
    reference = item.reference or whole.text
    segments = [s.model_dump() for s in whole.segments]
    n_frames = -(-item.audio.size // int(frame_sec * SAMPLE_RATE))
    lat = word_latencies(reference_words(segments), timed_events(run.timed()), frame_sec, n_frames)
    final = sorted(lat.final_values())
    first = sorted(lat.first_values())
    return {
        "clip": item.name,
        "wer": round(wer(reference, text), 4),
        "whole_wer": round(wer(reference, whole.text), 4),
        "vs_whole": round(wer(whole.text, text), 4),
        "requests": len(run.requests),
        "final_p50": round(statistics.median(final), 2) if final else None,
        "final_p95": round(final[int(0.95 * (len(final) - 1))], 2) if final else None,
        "first_p50": round(statistics.median(first), 2) if first else None,
        "first_p95": round(first[int(0.95 * (len(first) - 1))], 2) if first else None,
        "matched": round(lat.matched_fraction, 3),
        "behind": sum(1 for e in run.of("transcript") if e.get("behind")),
        "text": text,
        "reference": reference,
        "whole_text": whole.text,
    }


def report(row: dict[str, Any]) -> None:
    print(
        f"{row['clip']:28s} WER {row['wer']:.3f} (whole {row['whole_wer']:.3f}, vs whole "
        f"{row['vs_whole']:.3f}) final p50 {row['final_p50']} p95 {row['final_p95']} "
        f"first p50 {row['first_p50']} p95 {row['first_p95']} "
        f"matched {row['matched']} requests {row['requests']} behind {row['behind']}",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--material", choices=["short", "bench", "long"], default="long")
    parser.add_argument("--start", default='{"profile": "balanced", "partials": false}')
    parser.add_argument("--set", action="append", default=[], help="gateway setting=value")
    parser.add_argument("--frame-sec", type=float, default=0.3)
    parser.add_argument("--sessions", type=int, default=1, help="clips sharing one worker")
    parser.add_argument("--json", type=Path, help="write per-clip results here")
    args = parser.parse_args(argv)
    configure_logging("WARNING")  # the core's per-window debug lines are not the result
    overrides = dict(item.split("=", 1) for item in args.set)
    settings = GatewaySettings(**overrides)
    start = json.loads(args.start)
    engine = Engine()
    vad = load_model(find_model(settings.vad_model_path))
    rows = []
    items = material(args.material, engine)
    groups = [items[i : i + args.sessions] for i in range(0, len(items), args.sessions)]
    for group in groups:
        lanes = []
        for item in group:
            pcm = float_to_pcm16(item.audio)
            probs = vad.probabilities(pcm16_to_float(pcm))
            lanes.append((make_core({**start, "language": item.language}, settings), pcm, probs))
        if len(lanes) == 1:
            runs = [drive(*lanes[0], engine, args.frame_sec, cost_model(engine))]
        else:  # sessions sharing one worker
            runs = drive_sessions(lanes, engine, args.frame_sec, cost_model(engine))
        for item, run in zip(group, runs, strict=True):
            rows.append(score(run, item, engine.whole(item), args.frame_sec))
            report(rows[-1])
    refs = [r["reference"] for r in rows]
    pooled = wer(refs, [r["text"] for r in rows])
    whole = wer(refs, [r["whole_text"] for r in rows])
    finals = [r["final_p50"] for r in rows if r["final_p50"] is not None]
    firsts = [r["first_p50"] for r in rows if r["first_p50"] is not None]
    p95s = [r["final_p95"] for r in rows if r["final_p95"] is not None]
    print(
        f"{'pooled':28s} WER {pooled:.4f} whole {whole:.4f} (+{100 * (pooled - whole):.1f} pts) "
        f"final p50 median {statistics.median(finals) if finals else None} "
        f"p95 median {statistics.median(p95s) if p95s else None} "
        f"first p50 median {statistics.median(firsts) if firsts else None} "
        f"model calls {engine.calls}"
    )
    if args.json:
        args.json.write_text(json.dumps({"start": start, "set": overrides, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
