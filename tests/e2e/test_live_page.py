"""The demo page in headless Chromium against the real gateway and worker: a fake microphone
plays an eval clip in real time, the page streams it and shows the words."""

from __future__ import annotations

import itertools
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

from api.auth import digest
from bench.scoring import Clip, wer
from launcher.processes import ManagedProcess, free_port, gateway_process
from tests.e2e.conftest import (
    LEAD_SEC,
    Launch,
    final_text,
    mic_wav,
    open_page,
    sessions_logged,
    state,
    wait_state,
    word_count,
)
from tests.promises import hold

pytestmark = pytest.mark.browser

# 17.8 s of read Portuguese: long enough for many passes of the default (stream mode, a pass
# every 0.9 s), short enough to play in real time.
CLIP = "fleurs-pt-000"
RECONNECTING = re.compile(r"reconectando|reconnecting", re.IGNORECASE)


@pytest.fixture(scope="module")
def noisy_mic(manifest: dict[str, Clip], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The clip at 48 kHz with as much noise at 9-20 kHz as there is speech: inaudible to a
    band-limited 16 kHz downsampler, ruinous for one that drops samples (measured: 97% WER
    instead of 8.3% with nearest-sample decimation)."""
    return mic_wav(manifest[CLIP].path, tmp_path_factory.mktemp("mic") / "noisy.wav", 0.0)


def record(shots: Path, name: str, **values: Any) -> None:
    """Measured figures next to the screenshots (artifacts/e2e/NAME.json)."""
    (shots / f"{name}.json").write_text(json.dumps(values, ensure_ascii=False, indent=2))


def audio_received(page: Any) -> float:
    """Seconds of audio the server acknowledged, as the session panel shows it."""
    text = page.inner_text("#cfg-audio") or "0"
    match = re.search(r"[\d.,]+", text)
    return float(match.group(0).replace(".", "").replace(",", ".")) if match else 0.0


def play_through(page: Any, seconds: float, counts: list[int], timeout: float = 40.0) -> None:
    """Poll the word count every 100 ms until the server has received `seconds` of audio."""
    deadline = time.monotonic() + timeout
    while audio_received(page) < seconds:
        assert time.monotonic() < deadline, (
            f"only {audio_received(page)} s of audio received; state {state(page)}, "
            f"alerts {page.inner_text('#alerts')!r}, errors {page.errors}"
        )
        counts.append(word_count(page))
        page.wait_for_timeout(100)


def stop_and_wait(page: Any, counts: list[int], timeout: float = 60.0) -> None:
    page.click("#record")
    deadline = time.monotonic() + timeout
    while state(page) not in ("closed", "failed"):
        assert time.monotonic() < deadline, "no `end` after stop"
        counts.append(word_count(page))
        page.wait_for_timeout(100)
    counts.append(word_count(page))


@pytest.mark.timeout(150)
def test_live_transcription_matches_whole_file(
    gateway: ManagedProcess,
    launch: Launch,
    manifest: dict[str, Clip],
    whole_file_text: Any,
    noisy_mic: Path,
    shots: Path,
) -> None:
    """The page's default (stream mode) through a fake 48 kHz noisy microphone: the text is as
    good as the whole file's (promise row `stream-vs-whole-file`), the words grow while the
    clip plays, and the panels show the session's settings, version and latency."""
    clip = manifest[CLIP]
    whole = whole_file_text(CLIP)
    page = open_page(launch(noisy_mic), f"{gateway.url}/")
    assert page.input_value("#profile") == "stream"  # the default: the gateway's stream mode
    page.select_option("#language", clip.language)
    page.click("#record")
    wait_state(page, "live", timeout_ms=20_000)
    counts: list[int] = []
    play_through(page, LEAD_SEC + clip.duration_s + 0.5, counts)
    stop_and_wait(page, counts)
    page.wait_for_timeout(400)  # the last words' fade-in
    page.screenshot(path=str(shots / "live-desktop.png"), full_page=True)

    assert state(page) == "closed", page.inner_text("#alerts")
    text = final_text(page)
    page_wer, whole_wer = wer(clip.reference_text, text), wer(clip.reference_text, whole)
    growth = sum(1 for a, b in itertools.pairwise(counts) if b > a)
    record(shots, "live", page_wer=page_wer, whole_wer=whole_wer, growth=growth, text=text)
    hold("stream-vs-whole-file", page_wer, whole_wer, clip.reference_text, "page, 48 kHz noisy mic")
    assert growth >= 5, counts
    # the panels: effective window and where it came from, server version, latency
    assert page.inner_text("#cfg-window") == "contínuo, a cada 0,9 s"
    assert re.fullmatch(r"v\d+\.\d+\.\d+.*", page.inner_text("#server-version"))
    assert int(page.inner_text("#lat-count")) >= 5
    assert re.fullmatch(r"\d+ ms", page.inner_text("#lat-last"))
    assert str(word_count(page)) in page.inner_text("#summary")
    assert not page.errors, page.errors


@pytest.mark.timeout(90)
def test_keyboard_start_stop_and_profile_window(
    gateway: ManagedProcess, launch: Launch, manifest: dict[str, Clip], shots: Path
) -> None:
    """Tab reaches the record button, Enter starts and Enter stops; the profile selector
    changes what the gateway logs in `batch_stream_start` (stream mode by default, then a
    profile's batch window)."""
    page = open_page(launch(manifest["ufpalign-coxinha"].path), f"{gateway.url}/")
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "record":
            break
    else:
        pytest.fail("Tab never reached the record button")

    def session_by_keyboard() -> str:
        page.keyboard.press("Enter")
        wait_state(page, "live", timeout_ms=20_000)
        page.wait_for_function("document.getElementById('cfg-session').textContent.length > 8")
        assert page.evaluate("document.activeElement.id") == "record"
        page.keyboard.press("Enter")
        assert wait_state(page, "closed", "failed", timeout_ms=30_000) == "closed", page.inner_text(
            "#alerts"
        )
        return page.inner_text("#cfg-session")

    first = session_by_keyboard()
    page.select_option("#profile", "responsive")
    page.focus("#record")
    second = session_by_keyboard()
    page.screenshot(path=str(shots / "keyboard-profile.png"))

    logged = sessions_logged(gateway)
    assert logged[first]["mode"] == "stream"  # the default
    assert logged[second]["mode"] == "batch" and logged[second]["batch_window"] == 1.5
    assert logged[second]["profile"] == "responsive"
    assert "1,5 s" in page.inner_text("#cfg-window")
    assert not page.errors, page.errors


@pytest.mark.timeout(150)
def test_reconnects_after_gateway_restart(
    worker: ManagedProcess,
    launch: Launch,
    manifest: dict[str, Clip],
    whole_file_text: Any,
    noisy_mic: Path,
    log_dir: Path,
    shots: Path,
) -> None:
    """Kill the gateway mid-session: the page says it is reconnecting, reconnects to the new
    gateway on the same port with backoff and goes on; audio not yet transcribed is resent, so
    the text stays close to the whole file's (promise row `reconnect-vs-whole-file`)."""
    clip = manifest[CLIP]
    whole = whole_file_text(CLIP)
    port = free_port()
    first = gateway_process(port, worker.url, log_dir=log_dir, name=f"gateway-a-{port}")
    second = gateway_process(port, worker.url, log_dir=log_dir, name=f"gateway-b-{port}")
    try:
        first.start().wait_ready(60)
        page = open_page(launch(noisy_mic), f"{first.url}/")
        page.select_option("#language", clip.language)
        page.click("#record")
        wait_state(page, "live", timeout_ms=20_000)
        page.wait_for_function(
            "document.getElementById('transcript').dataset.words >= 3", timeout=20_000
        )
        before = word_count(page)
        first.kill()
        page.wait_for_function(
            "/reconectando|reconnecting/i.test(document.getElementById('status').textContent)",
            timeout=10_000,
        )
        assert RECONNECTING.search(page.inner_text("#status"))
        page.screenshot(path=str(shots / "reconnecting.png"))
        second.start().wait_ready(60)
        wait_state(page, "live", timeout_ms=30_000)
        counts: list[int] = []
        play_through(page, LEAD_SEC + clip.duration_s + 0.5, counts)  # the recording's timeline
        stop_and_wait(page, counts)
        assert state(page) == "closed", page.inner_text("#alerts")
        text = final_text(page)
        reference = clip.reference_text
        page_wer, whole_wer = wer(reference, text), wer(reference, whole)
        record(shots, "reconnect", page_wer=page_wer, whole_wer=whole_wer, before=before, text=text)
        assert word_count(page) > before
        assert sessions_logged(second), "the page never started a session on the new gateway"
        # nothing captured was lost: the text is still close to the whole-file text
        hold("reconnect-vs-whole-file", page_wer, whole_wer, reference)
        assert not [e for e in page.errors if "WebSocket" not in e], page.errors
    finally:
        first.kill()
        second.stop()


@pytest.mark.timeout(90)
def test_api_key_field_with_a_gateway_that_requires_keys(
    worker: ManagedProcess, launch: Launch, manifest: dict[str, Clip], log_dir: Path, shots: Path
) -> None:
    """Without a key: a clear message, no reconnect loop, upload refused; with the key (sent as
    the `bearer.<key>` subprotocol and as `Authorization: Bearer`): both work."""
    key = "demo-key_123"
    port = free_port()
    gateway = gateway_process(
        port,
        worker.url,
        env={"ASR_AUTH_REQUIRED": "true", "ASR_API_KEYS": f"demo:{digest(key)}"},
        log_dir=log_dir,
        name=f"gateway-auth-{port}",
    )
    try:
        gateway.start().wait_ready(60)
        clip = manifest["ufpalign-coxinha"]
        page = open_page(launch(clip.path), f"{gateway.url}/")
        page.click("#record")
        assert wait_state(page, "failed", timeout_ms=20_000) == "failed"
        assert "Chave de API" in page.inner_text("#alerts")
        assert page.inner_text("#record-label") == "Iniciar"
        page.set_input_files("#upload-file", str(clip.path))
        page.click("#upload-submit")
        page.wait_for_selector(".alert[data-code=upload_unauthorized]", timeout=20_000)
        page.screenshot(path=str(shots / "unauthorized.png"))

        page.click(".advanced summary")
        page.fill("#apikey", key)
        page.click("#upload-submit")
        page.wait_for_function(
            "document.getElementById('upload-text').textContent.startsWith('Pronto')",
            timeout=60_000,
        )
        assert "coxinha" in final_text(page).lower()
        page.click("#record")
        wait_state(page, "live", timeout_ms=20_000)
        page.wait_for_function("document.getElementById('cfg-session').textContent.length > 8")
        page.wait_for_timeout(1000)
        page.click("#record")
        assert wait_state(page, "closed", "failed", timeout_ms=30_000) == "closed"
        assert page.inner_text("#cfg-session") in sessions_logged(gateway)
        assert key not in gateway.log_text()
    finally:
        gateway.stop()
