"""The gateway's file routes through the official `openai` SDK, unmodified, against a real
gateway and worker: every response format, translation, streaming, the model list, and
OpenAI-shaped errors."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest
from openai import OpenAI

from bench.direct import run_direct
from bench.scoring import wer
from launcher.processes import ManagedProcess, free_port, gateway_process
from tests.audio_utils import silence, wav_bytes
from tests.backend import scaled
from tests.openai_utils import KEY, MAX_FILE_BYTES, MAX_FILE_SEC
from tests.promises import hold

SERVED = "whisper-base"  # ASR_WORKER_MODEL=embedded

pytestmark = pytest.mark.backend  # model-level: `make test-backend` runs it on the other backend


@pytest.fixture(scope="module")
def client(openai_gateway: ManagedProcess) -> Iterator[OpenAI]:
    with OpenAI(base_url=f"{openai_gateway.url}/v1", api_key=KEY, timeout=scaled(120)) as sdk:
        yield sdk


@pytest.mark.parametrize("fmt", ["json", "text", "srt", "vtt", "verbose_json"])
def test_every_response_format(client: OpenAI, manifest, whole_file_text, fmt: str) -> None:
    """jfk is cut into two pieces (10 s file pieces here): as good as the worker's whole file
    (promise row `file-vs-whole-file`)."""
    clip = manifest["jfk"]
    raw = client.audio.transcriptions.with_raw_response.create(
        model="whisper-1",
        file=clip.path.open("rb"),
        response_format=fmt,
        timestamp_granularities=["word", "segment"] if fmt == "verbose_json" else openai.omit,
    )
    assert raw.headers["x-model"] == SERVED  # which model really ran
    result = raw.parse()
    if fmt in ("json", "text"):
        text = result if isinstance(result, str) else result.text
        reference = clip.reference_text
        whole = wer(reference, whole_file_text("jfk"))
        hold("file-vs-whole-file", wer(reference, text), whole, reference, "two 10 s pieces")
        if fmt == "json":
            assert result.usage is not None and result.usage.type == "duration"
            assert result.usage.seconds == pytest.approx(11.0)
    elif fmt == "srt":
        assert isinstance(result, str) and result.startswith("1\n00:00:00,") and " --> " in result
        assert "\n2\n00:00:" in result  # the second piece's cue, on the file's timeline
    elif fmt == "vtt":
        assert isinstance(result, str) and result.startswith("WEBVTT\n\n00:00:00.")
    else:
        assert result.language == "en" and result.duration == pytest.approx(11.0)
        assert result.words and result.words[0].word == "And"
        starts = [w.start for w in result.words]
        assert starts == sorted(starts) and starts[-1] > 8.0
        assert result.segments and result.segments[-1].end > 10.0


# the SDK marks translations.create deprecated (OpenAI retires whisper-1); the route stays
@pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")
def test_translation_is_faster_whispers_own(client: OpenAI, manifest) -> None:
    """A Portuguese clip translated to English, against faster-whisper's task="translate" on
    the same clip with the worker's options (bench.direct: the engine called directly; promise
    row `translation-vs-faster-whisper`)."""
    clip = manifest["fleurs-pt-002"]
    translation = client.audio.translations.create(model="whisper-1", file=clip.path.open("rb"))
    direct = run_direct(
        threads=2,
        jobs=[{"id": clip.id, "path": str(clip.path), "language": "pt", "task": "translate"}],
        timeout_sec=scaled(600),
    )["results"][0]["text"]
    measured = wer(direct, translation.text)
    print(f"translation {translation.text!r}; faster-whisper {direct!r}; WER {measured:.2%}")
    hold("translation-vs-faster-whisper", measured, 0.0, direct)
    assert wer(clip.reference_text, translation.text) > 0.5  # English, not the Portuguese
    verbose = client.audio.translations.create(
        model="whisper-1", file=clip.path.open("rb"), response_format="verbose_json"
    )
    assert verbose.text == translation.text and verbose.language == "en"
    assert verbose.segments and verbose.duration == pytest.approx(clip.duration_s, abs=0.01)


def test_streamed_transcription(client: OpenAI, manifest) -> None:
    """stream=True: a delta per piece of the file (two here), in order, then done with the
    whole text: the same as the non-streamed call's."""
    clip = manifest["jfk"]
    whole = client.audio.transcriptions.create(model="gpt-4o-transcribe", file=clip.path.open("rb"))
    stream = client.audio.transcriptions.create(
        model="gpt-4o-transcribe", file=clip.path.open("rb"), stream=True
    )
    events = list(stream)
    kinds = [e.type for e in events]
    assert kinds == ["transcript.text.delta"] * (len(kinds) - 1) + ["transcript.text.done"]
    assert len(kinds) >= 3, kinds  # both pieces hold speech
    done = events[-1]
    assert done.text == "".join(e.delta for e in events[:-1]) == whole.text
    assert done.usage is not None and done.usage.output_tokens > 10
    assert done.usage.input_tokens == pytest.approx(11 * 50, abs=25)  # 20 ms per position


def test_models(client: OpenAI) -> None:
    ids = [m.id for m in client.models.list()]
    assert ids[0] == SERVED and {"whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe"} <= set(
        ids
    )
    alias = client.models.retrieve("gpt-4o-mini-transcribe")
    assert alias.id == "gpt-4o-mini-transcribe" and alias.root == SERVED  # type: ignore[attr-defined]  # `root`: a field the SDK's Model does not declare
    with pytest.raises(openai.NotFoundError) as missing:
        client.models.retrieve("dall-e-3")
    assert missing.value.code == "model_not_found" and "dall-e-3" in missing.value.message


def test_openai_shaped_errors(client: OpenAI, openai_gateway: ManagedProcess, manifest) -> None:
    with pytest.raises(openai.APIStatusError) as not_audio:
        client.audio.transcriptions.create(model="whisper-1", file=("notes.txt", b"hello " * 200))
    assert not_audio.value.status_code == 415 and not_audio.value.code == "bad_audio"
    assert "cannot decode audio" in not_audio.value.message
    too_big = wav_bytes(silence(MAX_FILE_BYTES / 32000 + 1))
    with pytest.raises(openai.APIStatusError) as over_bytes:
        client.audio.transcriptions.create(model="whisper-1", file=("big.wav", too_big))
    assert over_bytes.value.status_code == 413 and over_bytes.value.code == "too_large"
    assert str(MAX_FILE_BYTES) in over_bytes.value.message
    too_long = wav_bytes(silence(MAX_FILE_SEC + 2))
    with pytest.raises(openai.APIStatusError) as over_sec:
        client.audio.transcriptions.create(model="whisper-1", file=("long.wav", too_long))
    assert over_sec.value.status_code == 413 and over_sec.value.code == "too_long"
    with pytest.raises(openai.BadRequestError) as unknown:
        client.audio.transcriptions.create(model="tts-1", file=manifest["jfk"].path.open("rb"))
    assert unknown.value.code == "model_not_found" and unknown.value.param == "model"
    with pytest.raises(openai.AuthenticationError) as unauthorized:
        OpenAI(base_url=f"{openai_gateway.url}/v1", api_key="wrong").models.list()
    assert unauthorized.value.code == "invalid_api_key"
    # the body itself: exactly OpenAI's four fields, on every /v1 route (an unknown one too)
    response = httpx.get(f"{openai_gateway.url}/v1/nothing-here", headers=auth())
    body = response.json()
    assert response.status_code == 404 and set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}


def test_overloaded_is_503_with_retry_after(worker, log_dir) -> None:
    """No worker answering: OpenAI's shape with Retry-After kept (the SDK retries by it)."""
    proc = gateway_process(free_port(), f"http://127.0.0.1:{free_port()}", log_dir=log_dir)
    proc.ready_url = f"{proc.url}/health"  # alive, though not ready: no worker
    proc.start().wait_ready(timeout=scaled(60))
    try:
        sdk = OpenAI(base_url=f"{proc.url}/v1", api_key="any", max_retries=0)
        with pytest.raises(openai.InternalServerError) as busy:
            sdk.audio.transcriptions.create(
                model="whisper-1", file=("a.wav", wav_bytes(silence(1)))
            )
        assert busy.value.status_code == 503 and busy.value.code == "overloaded"
        assert busy.value.response.headers["retry-after"] == "5"
    finally:
        proc.stop()


def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {KEY}"}
