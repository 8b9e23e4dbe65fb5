"""The worker over real HTTP with the real embedded model."""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import time

import httpx
import numpy as np
import pytest

from asr.audio import resample
from bench.direct import run_direct
from bench.scoring import wer
from launcher.processes import ManagedProcess, free_port, worker_process
from tests.audio_utils import read_wav, silence, to_pcm16, wav_bytes, white_noise
from tests.backend import scaled
from tests.metrics_utils import scrape, value
from tests.promises import hold

pytestmark = pytest.mark.backend  # model-level: `make test-backend` runs it on the other backend

PT_CLIPS = [
    "fleurs-pt-000",
    "fleurs-pt-001",
    "fleurs-pt-002",
    "fleurs-pt-003",
    "fleurs-pt-004",
    "ufpalign-m-001",
    "ufpalign-coxinha",
    "ufpalign-falabrasil",
]
EN_CLIPS = [
    "jfk",
    "librispeech-quilter",
    "fleurs-en-000",
    "fleurs-en-001",
    "fleurs-en-002",  # peaks near -45 dBFS
    "fleurs-en-003",
    "fleurs-en-004",  # peaks near -49 dBFS
]


def post(url: str, content: bytes, filename: str = "a.wav", **form: object) -> httpx.Response:
    data = {k: str(v) for k, v in form.items()}
    return httpx.post(
        f"{url}/transcribe", files={"file": (filename, content)}, data=data, timeout=scaled(120)
    )


def test_wer_per_language_with_detection(worker: ManagedProcess, manifest) -> None:
    """Whole clips, language detected: detection right on all 15 clips (the -49 dBFS FLEURS
    English ones included), and per language the text as good as faster-whisper's own with the
    language given, run in this test (bench.direct: the engine called directly with the
    worker's model and options). Promise row `worker-vs-faster-whisper`."""
    clips = PT_CLIPS + EN_CLIPS
    results = {}
    for clip_id in clips:
        clip = manifest[clip_id]
        response = post(worker.url, clip.path.read_bytes())
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["language"] == clip.language, (clip_id, body["language"])
        assert body["duration_sec"] == pytest.approx(clip.duration_s, abs=0.01)
        results[clip_id] = body
        check_words(body, clip.duration_s)
    jobs = [
        {"id": c, "path": str(manifest[c].path), "language": manifest[c].language} for c in clips
    ]
    direct = {r["id"]: r["text"] for r in run_direct(2, jobs, scaled(600))["results"]}
    quiet = ["fleurs-en-002", "fleurs-en-003", "fleurs-en-004"]  # -45 to -49 dBFS
    for group, ids in (("pt", PT_CLIPS), ("en", EN_CLIPS), ("en-quiet", quiet)):
        references = [manifest[c].reference_text for c in ids]
        ours = wer(references, [results[c]["text"] for c in ids])
        theirs = wer(references, [direct[c] for c in ids])
        hold("worker-vs-faster-whisper", ours, theirs, references, what=group)


def check_words(body: dict, duration: float) -> None:
    words = [w for seg in body["segments"] for w in seg["words"]]
    assert words, "no words"
    previous_start = 0.0
    for word in words:
        assert 0.0 <= word["start"] <= word["end"] <= duration + 0.01, word
        assert word["start"] >= previous_start - 0.01, word
        assert 0.0 <= word["probability"] <= 1.0
        previous_start = word["start"]
    for seg in body["segments"]:
        assert set(seg) >= {"start", "end", "text", "avg_logprob", "no_speech_prob", "words"}


@pytest.mark.parametrize("language", ["pt", None])
def test_silence_and_noise_give_no_words(worker: ManagedProcess, language: str | None) -> None:
    signals = {"silence": silence(10)} | {
        f"noise{db}": white_noise(10, db, seed=-db) for db in (-60, -50, -40)
    }
    for name, audio in signals.items():
        form = {"language": language} if language else {}
        response = post(worker.url, wav_bytes(audio), **form)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["text"] == "" and body["segments"] == [], (name, body["text"])
        assert body["language"] in ("pt", "en"), (name, body["language"])  # never Welsh


def test_raw_pcm_at_another_rate(worker: ManagedProcess, manifest) -> None:
    """Raw 8 kHz PCM, resampled by the worker: as good as the same narrow-band sound sent as a
    16 kHz WAV (promise row `narrowband-vs-16k`)."""
    audio = read_wav(manifest["jfk"].path)
    narrow = resample(audio, 16000, 8000)
    response = post(
        worker.url, to_pcm16(narrow), "a.raw", format="pcm_s16le", sample_rate=8000, language="en"
    )
    assert response.status_code == 200, response.text
    at_16k = post(worker.url, wav_bytes(resample(narrow, 8000, 16000)), language="en")
    assert at_16k.status_code == 200, at_16k.text
    reference = manifest["jfk"].reference_text
    hold(
        "narrowband-vs-16k",
        wer(reference, response.json()["text"]),
        wer(reference, at_16k.json()["text"]),
        reference,
    )


@pytest.mark.parametrize(
    ("content", "form", "status"),
    [
        (b"", {}, 400),
        (b"this is not audio at all" * 50, {}, 415),
        (b"\x00\x01\x02", {"format": "pcm_s16le"}, 400),
        (None, {"beam_size": 0}, 422),
        (None, {"beam_size": 50}, 422),
        (None, {"beam_size": "abc"}, 422),
        (None, {"language": "xx"}, 422),
        (None, {"language": "de"}, 422),  # a real code, but not allowed here
        (None, {"sample_rate": 100, "format": "pcm_s16le"}, 422),
    ],
)
def test_bad_input_is_refused_clearly(
    worker: ManagedProcess, content: bytes | None, form: dict, status: int
) -> None:
    body = wav_bytes(silence(0.5)) if content is None else content
    response = post(worker.url, body, **form)
    assert response.status_code == status, response.text
    assert "detail" in response.json()
    assert httpx.get(f"{worker.url}/health").status_code == 200


def test_missing_file_is_422(worker: ManagedProcess) -> None:
    response = httpx.post(f"{worker.url}/transcribe", data={"beam_size": "5"})
    assert response.status_code == 422
    assert "file" in response.text


def test_decode_error_message(worker: ManagedProcess) -> None:
    response = post(worker.url, b"GARBAGE" * 100)
    assert "cannot decode audio" in response.json()["detail"]


def test_counters_move_by_what_was_sent(worker: ManagedProcess) -> None:
    before = scrape(worker.url)
    durations = [1.0, 2.5, 0.75]
    for seconds in durations:
        assert post(worker.url, wav_bytes(silence(seconds)), language="pt").status_code == 200
    after = scrape(worker.url)
    ok = ("asr_worker_requests_total", {"endpoint": "transcribe", "status": "200"})
    assert value(after, ok[0], **ok[1]) - value(before, ok[0], **ok[1]) == len(durations)
    audio = value(after, "asr_worker_audio_seconds_total") - value(
        before, "asr_worker_audio_seconds_total"
    )
    assert audio == pytest.approx(sum(durations), abs=1e-6)
    assert value(after, "asr_worker_in_flight") == 0
    assert not any(name.startswith("nvidia_gpu") for name, _ in after)  # CPU: absent, no crash


def test_timing_says_where_a_request_went(worker: ManagedProcess, manifest) -> None:
    """Each stage of the model call is timed (features, encoder, decoder, align), within the
    call's own time, and counted in asr_worker_stage_seconds; numpy's BLAS runs on one thread."""
    import psutil

    before = scrape(worker.url)
    clip = manifest["jfk"]
    response = post(worker.url, clip.path.read_bytes(), language="en")
    timing = response.json()["timing"]
    stages = [timing[f"{s}_ms"] for s in ("features", "encoder", "decoder", "align")]
    assert all(ms > 0 for ms in stages), timing
    assert sum(stages) <= timing["inference_ms"] and timing["batch_size"] == 1
    after = scrape(worker.url)
    for stage in ("features", "encoder", "decoder", "align", "other"):
        name = "asr_worker_stage_seconds_count"
        assert value(after, name, stage=stage) - value(before, name, stage=stage) == 1
    assert psutil.Process(worker.proc.pid).environ()["OPENBLAS_NUM_THREADS"] == "1"


@pytest.fixture(scope="module")
def limited_worker(log_dir) -> ManagedProcess:
    port = free_port()
    env = {
        "ASR_WORKER_MAX_UPLOAD_BYTES": "300000",
        "ASR_WORKER_MAX_AUDIO_SEC": "5",
        "ASR_WORKER_QUEUE_LIMIT": "0",
        "ASR_WORKER_CONCURRENCY": "1",
    }
    proc = worker_process(port, env=env, log_dir=log_dir, name="limited-worker").start()
    seen = []
    deadline = time.monotonic() + scaled(60)
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            seen.append(httpx.get(f"{proc.url}/ready", timeout=1).status_code)
        if seen and seen[-1] == 200:
            break
        time.sleep(0.02)
    proc.ready_statuses = seen  # type: ignore[attr-defined]  # what the fixture saw, kept on the process
    yield proc
    proc.stop()


def test_ready_is_503_until_warm(limited_worker: ManagedProcess) -> None:
    seen = limited_worker.ready_statuses  # type: ignore[attr-defined]  # what the fixture saw, kept on the process
    assert seen[0] == 503 and seen[-1] == 200, seen
    body = httpx.get(f"{limited_worker.url}/ready").json()
    assert body["device"] == "cpu" and body["compute_type"] == "int8"


def test_upload_and_duration_limits(limited_worker: ManagedProcess) -> None:
    too_big = post(limited_worker.url, wav_bytes(silence(12)))  # 384 kB > 300 kB
    assert too_big.status_code == 413, too_big.text
    too_long = post(limited_worker.url, wav_bytes(silence(6)))  # 192 kB, but 6 s > 5 s
    assert too_long.status_code == 413, too_long.text
    assert "limit" in too_long.json()["detail"]


def test_full_queue_answers_503_with_retry_after(limited_worker: ManagedProcess, manifest) -> None:
    speech = manifest["ufpalign-coxinha"].path.read_bytes()  # 4.5 s: real model work
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        responses = list(pool.map(lambda _: post(limited_worker.url, speech), range(4)))
    statuses = sorted(r.status_code for r in responses)
    assert 200 in statuses and 503 in statuses, statuses
    busy = next(r for r in responses if r.status_code == 503)
    assert busy.headers["retry-after"] == "1"
    assert httpx.get(f"{limited_worker.url}/ready").status_code == 200


def model_inputs(url: str) -> float:
    samples = scrape(url)
    return sum(v for (name, _), v in samples.items() if name == "asr_worker_model_inputs_total")


def test_noise_does_not_hold_the_model(worker: ManagedProcess) -> None:
    """Audio the VAD judges silence is answered without a model call."""
    before = model_inputs(worker.url)
    body = post(worker.url, wav_bytes(white_noise(10, -40)), language="en").json()
    assert body["speech_sec"] == 0.0 and body["segments"] == []
    assert model_inputs(worker.url) == before


def test_speech_spans_sent_with_a_request_replace_the_workers_vad(
    worker: ManagedProcess, manifest
) -> None:
    """The gateway's contract: with `speech_spans` the worker runs no VAD of its own. Spans
    saying there is no speech mean no model call, even for speech; the spans the worker's own
    VAD finds, sent back, give the same text."""
    clip = manifest["jfk"]
    pcm = to_pcm16(read_wav(clip.path))
    raw = {"format": "pcm_s16le", "language": "en"}
    own = post(worker.url, pcm, "a.raw", **raw).json()
    assert own["speech_spans"] and own["speech_sec"] > 5
    before = model_inputs(worker.url)
    silent = post(worker.url, pcm, "a.raw", speech_spans="[]", **raw).json()
    assert silent["segments"] == [] and silent["speech_sec"] == 0.0
    assert model_inputs(worker.url) == before
    given = post(worker.url, pcm, "a.raw", speech_spans=json.dumps(own["speech_spans"]), **raw)
    assert given.json()["text"] == own["text"]
    assert model_inputs(worker.url) == before + 1
    for bad in ("not json", "[[2, 1]]", '[["a", 1]]'):
        response = post(worker.url, pcm, "a.raw", speech_spans=bad, **raw)
        assert response.status_code == 422 and "speech_spans" in response.json()["detail"], bad


def live_window(url: str, audio, **form: object) -> dict:
    """A live window as the gateway sends it: PCM16, language and temperature pinned, a 3 s
    encoder padding (asr/window_decode.py)."""
    fields = {"format": "pcm_s16le", "language": "pt", "temperature": 0.0, "encoder_pad_sec": 3.0}
    response = post(url, to_pcm16(audio), **{**fields, **form})
    assert response.status_code == 200, response.text
    return response.json()


def test_a_live_window_returns_only_the_words_after_its_prefix(
    worker: ManagedProcess, manifest
) -> None:
    audio = read_wav(str(manifest["fleurs-pt-000"].path))[: 9 * 16000]
    before = scrape(worker.url)
    whole = live_window(worker.url, audio)
    words = [w for s in whole["segments"] for w in s["words"]]
    assert value(scrape(worker.url), "asr_worker_model_inputs_total", path="window") > value(
        before, "asr_worker_model_inputs_total", path="window"
    )
    said = [w for w in words if w["end"] <= 4.5]  # the words a gateway sent already
    assert 4 <= len(said) < len(words)
    prefix = "".join(w["word"] for w in said).strip()
    after = live_window(worker.url, audio, prefix=prefix)
    new = [w for s in after["segments"] for w in s["words"]]
    # only what follows the prefix comes back, with times on the window's timeline
    assert new and new[0]["start"] >= said[-1]["end"] - 0.3
    measured = wer(whole["text"], f"{prefix} {after['text']}")
    hold("prefix-vs-whole-window", measured, 0.0, whole["text"])


def test_a_prefix_that_says_everything_gets_nothing_more(worker: ManagedProcess, manifest) -> None:
    """Forced through all the window says, with 2 s of silence after it, the decoder may go on
    inventing (it did, "E aí!", before the budget counted the prefix): nothing comes back."""
    clip = read_wav(str(manifest["ufpalign-coxinha"].path))
    audio = np.concatenate([clip, silence(2.0)])
    said = live_window(worker.url, audio)["text"]
    assert "coxinha" in said.lower()
    again = live_window(worker.url, audio, prefix=said)
    assert again["segments"] == [] and again["text"] == ""
