"""Real-browser fixtures: Debian's headless Chromium driven by Playwright, a fake microphone
that plays a WAV file once, axe-core for accessibility checks."""

from __future__ import annotations

import json
import re
import wave
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from contracts.audio import float_to_pcm16
from launcher.processes import ManagedProcess
from tests.conftest import ARTIFACTS

CHROMIUM = Path("/usr/bin/chromium")
AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
SHOTS = ARTIFACTS / "e2e"
BASE_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
]
CAPTURE_RATE = 48_000  # Chromium's fake capture takes any rate; 48 kHz leaves room for HF noise
LEAD_SEC = 1.5  # silence before the speech in fake-microphone files
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 375, "height": 667}

# Browsers are launched by tests, so each can pick its own fake microphone file.
Launch = Callable[..., Any]


# Package scope, not session: Playwright's sync API keeps an asyncio loop marked as running in
# this thread while its driver lives, which would break every later `asyncio.run` and
# pytest-asyncio test in the same run.
@pytest.fixture(scope="package")
def playwright_driver() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium chromium-driver")
    from playwright.sync_api import sync_playwright

    driver = sync_playwright().start()
    try:
        yield driver
    finally:
        driver.stop()


@pytest.fixture
def launch(playwright_driver: Any) -> Iterator[Launch]:
    """`launch(mic_wav=None, extra_args=())` -> a Browser whose fake microphone plays
    `mic_wav` once (without a file Chromium plays a beep); closed after the test."""
    browsers: list[Any] = []

    def start(mic_wav: Path | None = None, extra_args: tuple[str, ...] = ()) -> Any:
        args = [*BASE_ARGS, *extra_args]
        if mic_wav is not None:
            args.append(f"--use-file-for-fake-audio-capture={mic_wav}%noloop")
        browser = playwright_driver.chromium.launch(
            executable_path=str(CHROMIUM), args=args, timeout=30_000
        )
        browsers.append(browser)
        return browser

    yield start
    for browser in browsers:
        browser.close()


@pytest.fixture(scope="session")
def axe_source() -> str:
    if not AXE.exists():
        pytest.skip(f"{AXE} is missing: `make install` runs npm install axe-core")
    return AXE.read_text()


@pytest.fixture(scope="session")
def shots() -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    return SHOTS


# ---- audio for the fake microphone -----------------------------------------------------------


def write_wav(path: Path, audio: np.ndarray, rate: int) -> Path:
    pcm = float_to_pcm16(audio)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm.tobytes())
    return path


def read_wav16k(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as wav:
        assert wav.getframerate() == 16_000 and wav.getnchannels() == 1
        return np.frombuffer(wav.readframes(wav.getnframes()), "<i2").astype(np.float32) / 32768


def band_noise(samples: int, rate: int, low_hz: float, high_hz: float, seed: int = 7) -> np.ndarray:
    """White noise confined to [low_hz, high_hz], unit RMS."""
    spectrum = np.fft.rfft(np.random.default_rng(seed).standard_normal(samples))
    freqs = np.fft.rfftfreq(samples, 1 / rate)
    spectrum[(freqs < low_hz) | (freqs > high_hz)] = 0
    noise = np.fft.irfft(spectrum, samples)
    return noise / np.sqrt(np.mean(noise**2))


def mic_wav(
    clip: Path, dest: Path, hf_noise_db: float | None = None, lead_sec: float = LEAD_SEC
) -> Path:
    """The 16 kHz clip at 48 kHz for the fake microphone, after `lead_sec` of silence (the
    fake device starts playing when the page asks for the microphone, a moment before the
    page's audio graph runs: a person, too, presses Start and then speaks), optionally with
    noise at 9-20 kHz, `hf_noise_db` relative to the speech's RMS. A band-limited downsampler
    removes that noise completely; one that drops samples folds it onto the speech band (and
    the WER shows it)."""
    import soxr

    speech = soxr.resample(read_wav16k(clip), 16_000, CAPTURE_RATE, "VHQ")
    audio = np.concatenate([np.zeros(int(lead_sec * CAPTURE_RATE), np.float32), speech])
    if hf_noise_db is not None:
        speech = audio[np.abs(audio) > 0.01]
        rms = float(np.sqrt(np.mean(speech**2))) if speech.size else 0.05
        audio = audio + band_noise(audio.size, CAPTURE_RATE, 9_000, 20_000) * rms * 10 ** (
            hf_noise_db / 20
        )
    return write_wav(dest, audio.astype(np.float32), CAPTURE_RATE)


# ---- page helpers ----------------------------------------------------------------------------


def open_page(browser: Any, url: str, viewport: dict[str, int] | None = None) -> Any:
    """A page on the demo, with its console errors collected in `page.errors`."""
    page = browser.new_page(viewport=viewport or DESKTOP)
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.on("console", lambda msg: page.errors.append(msg.text) if msg.type == "error" else None)
    page.goto(url)
    page.wait_for_selector("body[data-ready=true]", timeout=10_000)
    return page


def word_count(page: Any) -> int:
    return int(page.get_attribute("#transcript", "data-words") or 0)


def state(page: Any) -> str:
    return page.get_attribute("#status", "data-state") or ""


def wait_state(page: Any, *states: str, timeout_ms: float = 60_000) -> str:
    page.wait_for_function(
        "states => states.includes(document.getElementById('status').dataset.state)",
        arg=list(states),
        timeout=timeout_ms,
    )
    return state(page)


def final_text(page: Any) -> str:
    return re.sub(r"\s+", " ", page.inner_text(".transcript-final")).strip()


def sessions_logged(gateway: ManagedProcess) -> dict[str, dict[str, Any]]:
    """The gateway's `batch_stream_start` lines by session id."""
    found = {}
    for line in gateway.log_text().splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            if entry.get("event") == "batch_stream_start":
                found[entry["session_id"]] = entry
    return found


def run_axe(page: Any, axe_source: str) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(content=axe_source)
    result = page.evaluate("async () => await axe.run(document)")
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
