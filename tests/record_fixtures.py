"""Record the session core's fixtures: real worker responses for the windows the core asks for.

    python -m tests.record_fixtures            # all scenarios, into tests/fixtures/
    python -m tests.record_fixtures --find     # also look for rare cases across the dev set

Each scenario's audio (built from ../shared/eval clips), the gateway VAD's chunk probabilities
for it, and the real model's answer (the worker's engine, in this process, with the spans the
core sent) to every request the core made, keyed by what the request asks. The unit tests
replay them (tests/unit/test_session_core.py); when the policy changes which windows it asks
for, they say so and this records them again.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from api.config import GatewaySettings
from api.vad_model import find_model, load_model
from bench.scoring import load_manifest
from contracts.audio import SAMPLE_RATE, pcm16_to_float
from contracts.worker import TranscriptionResponse
from tests.audio_utils import read_wav, to_pcm16
from tests.core_driver import FIXTURES, Run, drive, make_core


@dataclass(frozen=True)
class Scenario:
    name: str
    clips: tuple[str, ...]  # joined, with `gap_sec` of silence between them
    start: dict[str, Any]
    gap_sec: float = 0.0
    context_from: float | None = None  # a new session from here on (s), with 5 s of context
    notes: str = ""
    settings: dict[str, Any] = field(default_factory=dict)  # gateway settings overridden


SCENARIOS = [
    Scenario("batch-fleurs-pt-000", ("fleurs-pt-000",), {"language": "pt", "profile": "balanced"}),
    Scenario(
        "batch-pause",
        ("ufpalign-coxinha", "ufpalign-m-001"),
        {"language": "pt", "profile": "balanced"},
        gap_sec=2.0,
        notes="a 2 s pause: an endpoint and its utterance_end",
    ),
    Scenario("stream-fleurs-pt-000", ("fleurs-pt-000",), {"language": "pt", "mode": "stream"}),
    Scenario(
        "resume-fleurs-pt-000",
        ("fleurs-pt-000",),
        {"language": "pt", "profile": "balanced"},
        context_from=8.0,
        notes="a new session continuing at 8 s, with the 5 s before it as context",
    ),
    Scenario(
        "batch-carry",
        ("ufpalign-falabrasil",),
        {"language": "pt", "profile": "ultra_fast"},
        notes="a window whose answer has no new words (whisper dropped them): carried. Without "
        "the decoder prefix and the short encoder input: with them, whisper answered every "
        "non-final window of the dev set's clips (3 profiles) with its new words",
        settings={"decoder_prefix": False, "window_encoder_pad_sec": None},
    ),
    Scenario(
        "batch-retry-alone",
        ("fleurs-en-000",),
        {"language": "en", "profile": "ultra_fast"},
        notes="the final window answered without its new words: retried without context",
        settings={"batch_empty_window": "alone"},
    ),
]


def scenario_audio(scenario: Scenario, manifest: dict) -> np.ndarray:
    parts: list[np.ndarray] = []
    for i, clip in enumerate(scenario.clips):
        if i:
            parts.append(np.zeros(int(scenario.gap_sec * SAMPLE_RATE), dtype=np.float32))
        parts.append(read_wav(manifest[clip].path))
    return np.frombuffer(to_pcm16(np.concatenate(parts)), "<i2")


class ModelResponder:
    """The worker's engine, in process: what POST /transcribe answers for the same request."""

    def __init__(self) -> None:
        from asr.config import WorkerSettings
        from asr.model import SpeechModel
        from asr.vad import as_spans

        settings = WorkerSettings(cpu_threads=2, warmup=False)
        self.model = SpeechModel(settings)
        self.as_spans = as_spans
        self.recorded: dict[str, dict[str, Any]] = {}

    def __call__(self, request: Any) -> TranscriptionResponse:
        spans = None if request.speech_spans is None else self.as_spans(request.speech_spans)
        audio = pcm16_to_float(request.audio)
        if request.purpose == "partial":
            result = self.model.draft(audio, request.options, spans)
        else:
            result = self.model.transcribe(audio, request.options, spans)
        result.timing.inference_ms = 0.0  # not part of the fixture
        self.recorded[request.key] = {
            "options": request.options.model_dump(),
            "response": result.model_dump(),
        }
        return result


def record(scenario: Scenario, manifest: dict, responder: ModelResponder) -> Run:
    pcm = scenario_audio(scenario, manifest)
    probs_all = load_model(find_model()).probabilities(pcm16_to_float(pcm))
    responder.recorded = {}
    settings = GatewaySettings(**scenario.settings)
    if scenario.context_from is None:
        core = make_core(scenario.start, settings)
        probs, first, audio = probs_all, 0, pcm
    else:
        cut = int(scenario.context_from * SAMPLE_RATE)
        begin = cut - 5 * SAMPLE_RATE
        first = begin + (cut - begin) % 512  # VAD chunks line up with the new timeline
        core = make_core(scenario.start, settings, cut, cut - begin)
        probs = load_model(find_model()).probabilities(pcm16_to_float(pcm[first:]))
        audio = pcm[begin:]
    run = drive(core, audio, probs, responder, first_chunk_at=first)
    fixture = {
        "scenario": scenario.name,
        "clips": list(scenario.clips),
        "gap_sec": scenario.gap_sec,
        "context_from": scenario.context_from,
        "start": scenario.start,
        "settings": scenario.settings,
        "notes": scenario.notes,
        "probs": [float(p) for p in probs],
        "first_chunk_at": first,
        "responses": responder.recorded,
        "expected_text": run.text,
        "requests": [r.key for r in run.requests],
    }
    path = FIXTURES / f"{scenario.name}.json"
    path.write_text(json.dumps(fixture, ensure_ascii=False, indent=0))
    return run


def describe(run: Run) -> str:
    purposes = [r.purpose for r in run.requests]
    return (
        f"{len(run.requests)} requests ({purposes.count('alone')} alone), "
        f"{len(run.of('transcript'))} transcripts, {len(run.of('utterance_end'))} utterance_end"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--find", action="store_true", help="count rare cases over the dev set")
    parser.add_argument("--only", help="one scenario name")
    args = parser.parse_args(argv)
    manifest = load_manifest()
    responder = ModelResponder()
    FIXTURES.mkdir(exist_ok=True)
    for scenario in SCENARIOS:
        if args.only and scenario.name != args.only:
            continue
        run = record(scenario, manifest, responder)
        print(f"{scenario.name}: {describe(run)}", flush=True)
    if args.find:
        for clip in (c for c, entry in manifest.items() if entry.duration_s <= 20):
            for profile in ("balanced", "responsive", "ultra_fast"):
                language = manifest[clip].language
                scenario = Scenario(
                    f"find-{clip}-{profile}", (clip,), {"language": language, "profile": profile}
                )
                pcm = scenario_audio(scenario, manifest)
                probs = load_model(find_model()).probabilities(pcm16_to_float(pcm))
                run = drive(make_core(scenario.start), pcm, probs, responder)
                print(f"{clip} {profile}: {describe(run)}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
