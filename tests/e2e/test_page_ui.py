"""The demo page's behaviour that needs no speech: caching, layout, accessibility, how it renders
each protocol event (against a scripted WebSocket), the downsampler, file upload and export."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.config import GatewaySettings
from api.main import create_app
from bench.scoring import Clip, wer
from contracts.events import ErrorCode
from launcher.processes import ManagedProcess
from tests.e2e.conftest import (
    DESKTOP,
    PHONE,
    Launch,
    final_text,
    open_page,
    run_axe,
    state,
    wait_state,
    word_count,
)
from tests.promises import hold

FRONTEND = Path(__file__).resolve().parents[2] / "frontend"
RECONNECTING = re.compile(r"reconectando|reconnecting", re.IGNORECASE)
WS_SPY = """
window.__sockets = [];
const NativeWebSocket = window.WebSocket;
window.WebSocket = class extends NativeWebSocket {
  constructor(url, protocols) {
    super(url, protocols);
    window.__sockets.push({url, protocols: protocols === undefined ? null : protocols});
  }
};
"""
READY = {
    "event": "ready",
    "session_id": "0123456789abcdef0123456789abcdef",
    "protocol": "1",
    "version": "9.8.7",
    "config": {
        "batch_window_sec": 2.0,
        "max_batch_window_sec": 10.0,
        "beam_size": 5,
        "best_of": 1,
        "profile": "balanced",
        "language": None,
    },
    "config_sources": {
        "batch_window_sec": "explicit",
        "max_batch_window_sec": "explicit",
        "beam_size": "profile",
        "best_of": "profile",
    },
    "warnings": [],
}


def transcript_event(
    segment_id: int, words: list[str], start: float, batch_ms: float
) -> dict[str, Any]:
    return {
        "event": "transcript",
        "segment_id": segment_id,
        "text": " ".join(words),
        "words": [
            {"word": w, "start": start + i * 0.3, "end": start + i * 0.3 + 0.25, "probability": 0.9}
            for i, w in enumerate(words)
        ],
        "start": start,
        "end": start + len(words) * 0.3,
        "language": "pt",
        "channel": 0,
        "timing": {"window_sec": 2.0, "queue_ms": 0.0, "inference_ms": 0.0, "batch_ms": batch_ms},
    }


def starts(received: list[str | bytes]) -> list[dict[str, Any]]:
    return [json.loads(m) for m in received if isinstance(m, str) and '"start"' in m[:20]]


def wait_until(check: Callable[[], bool], page: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        page.wait_for_timeout(20)


def test_page_served_no_cache_with_etag() -> None:
    """Every page file: 200, `Cache-Control: no-cache` and an ETag that revalidates to 304;
    scripts with a JavaScript type (module scripts need it); nothing from a CDN."""
    client = TestClient(create_app(GatewaySettings()))
    index = client.get("/")
    assert index.status_code == 200 and "text/html" in index.headers["content-type"]
    assert index.headers["cache-control"] == "no-cache"
    assert client.get("/", headers={"If-None-Match": index.headers["etag"]}).status_code == 304
    html = index.text
    assert not re.search(r"""(src|href)=["']https?://""", html)
    names = {p.name for p in FRONTEND.iterdir() if p.is_file()}
    assert {"index.html", "app.js", "pcm-worklet.js", "resampler.js", "styles.css"} <= names
    for name in sorted(names - {"index.html"}):
        response = client.get(f"/{name}")
        assert response.status_code == 200, name
        assert response.headers["cache-control"] == "no-cache", name
        etag = response.headers["etag"]
        assert client.get(f"/{name}", headers={"If-None-Match": etag}).status_code == 304
        if name.endswith(".js"):
            assert "javascript" in response.headers["content-type"], name
            assert not re.search(r"""from\s+["']https?://|import\(["']https?://""", response.text)


@pytest.mark.browser
@pytest.mark.timeout(60)
def test_phone_layout_and_accessibility(
    gateway: ManagedProcess, launch: Launch, axe_source: str, shots: Path
) -> None:
    """No horizontal scroll at 375x667; no serious or critical axe-core violations, in both
    languages, with the optional panels open."""
    browser = launch()
    page = open_page(browser, f"{gateway.url}/", PHONE)
    assert page.evaluate("document.documentElement.lang") == "pt-BR"
    assert page.inner_text("#record-label") == "Iniciar"
    page.check("#insights")
    page.click(".advanced summary")
    assert page.is_visible("#insights-card") and page.is_visible("#apikey")
    for locale, label in (("pt-BR", "Iniciar"), ("en", "Start")):
        page.click(f"[data-locale='{locale}']")
        assert page.inner_text("#record-label") == label
        assert page.evaluate("document.documentElement.lang") == locale
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"horizontal scroll at 375 px ({locale}): {width}"
        assert run_axe(page, axe_source) == [], locale
    page.screenshot(path=str(shots / "phone-375x667.png"), full_page=True)
    # every label in both languages, and a message for every error code of the protocol
    keys = page.evaluate(
        """async () => {
          const { STRINGS } = await import('/i18n.js');
          const used = [...document.querySelectorAll('*')].flatMap(e =>
            ['data-i18n', 'data-i18n-aria-label'].map(a => e.getAttribute(a)).filter(Boolean));
          return {pt: Object.keys(STRINGS['pt-BR']), en: Object.keys(STRINGS.en), used};
        }"""
    )
    assert sorted(keys["pt"]) == sorted(keys["en"])
    assert set(keys["used"]) <= set(keys["pt"])
    assert {f"error.{code.value}" for code in ErrorCode} <= set(keys["pt"])
    desktop = open_page(browser, f"{gateway.url}/?lang=en", DESKTOP)
    assert desktop.inner_text("#record-label") == "Start"
    assert run_axe(desktop, axe_source) == []
    assert not page.errors and not desktop.errors, (page.errors, desktop.errors)


@pytest.mark.browser
@pytest.mark.timeout(60)
def test_protocol_events_render(
    gateway: ManagedProcess, launch: Launch, axe_source: str, shots: Path
) -> None:
    """Against a scripted server: the start payload, 300 ms PCM16 frames, partial text distinct
    from final text and cleared by a transcript, words 50 ms apart, latency, insights, error
    messages in both languages, no reconnect after `unauthorized`, the API key as subprotocol."""
    sockets: list[Any] = []
    received: list[str | bytes] = []

    def serve(ws: Any) -> None:
        sockets.append(ws)
        ws.on_message(lambda message: received.append(message))

    page = launch().new_page(viewport=DESKTOP)
    page.route_web_socket(re.compile(r".*/ws/transcribe$"), serve)
    page.add_init_script(WS_SPY)  # after the route: it wraps the routed WebSocket
    page.clock.install()  # the page's timers on a clock that runs, and that the test can jump
    page.goto(f"{gateway.url}/")
    page.wait_for_selector("body[data-ready=true]")
    assert page.input_value("#profile") == "stream"  # the default; this test sends a profile's
    page.select_option("#profile", "balanced")
    page.check("#insights")
    page.click(".advanced summary")
    page.fill("#apikey", "demo-key_123")
    page.click("#record")
    wait_until(lambda: len(received) >= 1, page)
    start = starts(received)[0]
    assert start == {
        "event": "start",
        "batch_window_sec": 2.0,
        "max_batch_window_sec": 10.0,
        "enable_insights": True,
        "provider": "local",
        "profile": "balanced",
        "sample_rate": 16000,
        "encoding": "pcm_s16le",
    }
    assert page.evaluate("window.__sockets[0].protocols") == ["asr.v1", "bearer.demo-key_123"]
    ws = sockets[0]
    ws.send(json.dumps(READY))
    wait_until(lambda: sum(isinstance(m, bytes) for m in received) >= 3, page)
    frames = [m for m in received if isinstance(m, bytes)]
    assert {len(f) for f in frames} == {9600}  # 300 ms of 16 kHz PCM16
    assert page.inner_text("#cfg-version") == "9.8.7"
    assert page.inner_text("#server-version") == "v9.8.7"
    assert "2,0 s" in page.inner_text("#cfg-window") and "enviado" in page.inner_text("#cfg-window")
    assert "perfil" in page.inner_text("#cfg-beam")

    # partial: distinct style, replaced (not appended), cleared by any transcript
    ws.send(json.dumps({"event": "partial", "text": "eu quero", "words": []}))
    ws.send(json.dumps({"event": "partial", "text": "eu quero uma cox", "words": []}))
    page.wait_for_function(
        "document.querySelector('.transcript-partial').textContent === 'eu quero uma cox'"
    )
    styles = page.evaluate(
        """() => ['.transcript-partial', '#transcript'].map(s => {
             const c = getComputedStyle(document.querySelector(s));
             return [c.fontStyle, c.color];
           })"""
    )
    assert styles[0] != styles[1], styles
    page.evaluate(
        """() => { window.__counts = [];
          new MutationObserver(() => window.__counts.push(
            [performance.now(), +document.getElementById('transcript').dataset.words]))
          .observe(document.getElementById('transcript'), {attributeFilter: ['data-words']}); }"""
    )
    words = ["eu", "quero", "uma", "coxinha", "de", "frango"]
    ws.send(json.dumps(transcript_event(0, words, 0.0, 812.4)))
    page.wait_for_function("document.getElementById('transcript').dataset.words === '6'")
    assert page.is_hidden(".transcript-partial")
    # word i is due 50 ms after word i-1 (timers fire late on a busy machine, never early; a
    # late one shows the words already due at once)
    times = [t for t, _ in page.evaluate("window.__counts")]
    assert times[0] == min(times) and 200 <= times[-1] - times[0] <= 1500, times
    long_words = [f"palavra{i}" for i in range(30)]
    page.evaluate("window.__counts = []")
    ws.send(json.dumps(transcript_event(1, long_words, 3.0, 950.0)))
    page.wait_for_function("document.getElementById('transcript').dataset.words === '36'")
    times = [t for t, _ in page.evaluate("window.__counts")]
    assert 240 <= times[-1] - times[0] <= 900, times  # capped at 300 ms, not 30 x 50 ms
    assert final_text(page).startswith("eu quero uma coxinha de frango palavra0")
    assert page.inner_text("#lat-last") == "950 ms"
    assert page.inner_text("#lat-count") == "2"

    ws.send(json.dumps({"event": "insights", "provider": "local", "topic": "pedido de comida"}))
    page.wait_for_function("document.getElementById('insights-list').textContent.length > 0")
    assert "pedido de comida" in page.inner_text("#insights-card")
    assert page.is_hidden("#insights-waiting")

    ws.send(
        json.dumps(
            {
                "event": "error",
                "code": "worker_failed",
                "message": "audio 12.00-14.31 s failed: HTTP 503",
                "fatal": False,
                "span": {"start": 12.0, "end": 14.31, "channel": 0},
            }
        )
    )
    page.wait_for_selector(".alert[data-code=worker_failed]")
    assert "não pôde ser transcrito" in page.inner_text("#alerts")
    assert "12,0–14,3 s" in page.inner_text("#alerts")
    assert state(page) == "live"
    page.screenshot(path=str(shots / "events-pt.png"), full_page=True)
    assert run_axe(page, axe_source) == []
    page.click("[data-locale='en']")
    assert "could not be transcribed" in page.inner_text("#alerts")
    assert page.inner_text("#status-text") == "Live"
    page.click("[data-locale='pt-BR']")

    # a dropped connection: resume the session, send audio from where the server has it,
    # skip replayed transcripts already shown
    ws.send(json.dumps({"event": "ack", "received_offset": 48000, "committed_offset": 40000}))
    page.wait_for_function("document.getElementById('cfg-audio').textContent === '3,0 s'")
    ws.close(code=1011, reason="network")
    wait_until(lambda: len(sockets) == 2 and len(starts(received)) == 2, page)
    assert RECONNECTING.search(page.inner_text("#status")), page.inner_text("#status")
    resume = starts(received)[-1]
    assert resume["resume"] == {
        "session_id": READY["session_id"],
        "offset": 40000,
        "last_segment_id": 1,
    }
    first_frame = len(received)
    sockets[1].send(
        json.dumps({**READY, "resumed": True, "received_offset": 50000, "committed_offset": 40000})
    )
    sockets[1].send(json.dumps(transcript_event(1, long_words, 3.0, 950.0)))  # a replay
    wait_state(page, "live", timeout_ms=5_000)
    wait_until(lambda: any(isinstance(m, bytes) for m in received[first_frame:]), page)
    resent = [m for m in received[first_frame:] if isinstance(m, bytes)]
    assert len(resent[0]) == (52800 - 50000) * 2  # the frame holding sample 50000, from there
    assert word_count(page) == 36

    # a restarted gateway does not know the session: a new one continues the timeline
    sockets[1].close(code=1011, reason="gone")
    wait_until(lambda: len(sockets) == 3 and len(starts(received)) == 3, page)
    assert "resume" in starts(received)[-1]
    first_frame = len(received)
    sockets[2].send(
        json.dumps(
            {
                "event": "error",
                "code": "resume_unknown",
                "message": "unknown session",
                "fatal": False,
            }
        )
    )
    wait_until(lambda: len(starts(received)) == 4, page)
    fresh = starts(received)[-1]
    assert "resume" not in fresh and fresh["timeline_offset"] == 40000
    # with the committed audio before it as context, from the first word of the last 5 s
    assert fresh["context_samples"] == 40000
    assert fresh["context_word_starts"] == [0, 4800, 9600, 14400, 19200, 24000]
    sockets[2].send(json.dumps({**READY, "session_id": "f" * 32}))

    def resent() -> list[bytes]:
        return [m for m in received[first_frame:] if isinstance(m, bytes)]

    wait_until(lambda: sum(map(len, resent())) >= 43200 * 2, page)
    assert len(resent()[0]) == 4800 * 2 and sum(map(len, resent()[:9])) == 43200 * 2
    sockets[2].send(json.dumps(transcript_event(0, ["de", "novo"], 12.0, 700.0)))
    page.wait_for_function("document.getElementById('transcript').dataset.words === '38'")
    assert not page.query_selector(".alert[data-code=resume_unknown]")

    sockets[2].send(
        json.dumps(
            {"event": "error", "code": "unauthorized", "message": "wrong key", "fatal": True}
        )
    )
    sockets[2].close(code=1008, reason="unauthorized")
    assert wait_state(page, "failed", timeout_ms=5_000) == "failed"
    assert "Chave de API" in page.inner_text("#alerts")
    page.clock.run_for(20_000)  # any reconnect timer would fire now: the longest backoff is 9.6 s
    assert page.evaluate("window.__sockets.length") == 3, "reconnected after `unauthorized`"
    assert len(sockets) == 3 and state(page) == "failed"
    assert page.inner_text("#record-label") == "Iniciar"
    assert word_count(page) == 38


@pytest.mark.browser
@pytest.mark.timeout(60)
def test_downsampler_is_band_limited(gateway: ManagedProcess, launch: Launch) -> None:
    """The worklet's resampler (44.1 and 48 kHz to 16 kHz): speech band passes flat, anything
    above 8 kHz is removed instead of folding onto the speech band, block size changes nothing."""
    page = open_page(launch(), f"{gateway.url}/")
    result = page.evaluate(
        """async () => {
          const { Resampler } = await import('/resampler.js');
          const out = {};
          for (const rate of [44100, 48000]) {
            const n = rate * 2;
            const gain = (freq) => {
              const x = new Float32Array(n);
              for (let i = 0; i < n; i++) x[i] = 0.5 * Math.sin(2 * Math.PI * freq * i / rate);
              const r = new Resampler(rate, 16000);
              const y = r.process(x);
              const mid = y.subarray(2000, y.length - 2000);
              let s = 0; for (const v of mid) s += v * v;
              return 20 * Math.log10(Math.sqrt(s / mid.length) / (0.5 / Math.SQRT2));
            };
            const x = new Float32Array(n).map((_, i) => Math.sin(i * 0.37) * Math.cos(i * 0.011));
            const whole = new Resampler(rate, 16000);
            const a = Array.from(whole.process(x)).concat(Array.from(whole.flush()));
            const blocks = new Resampler(rate, 16000);
            let b = [];
            for (let i = 0; i < n; i += 128) {
              b = b.concat(Array.from(blocks.process(x.subarray(i, i + 128))));
            }
            b = b.concat(Array.from(blocks.flush()));
            let diff = 0;
            for (let i = 0; i < Math.min(a.length, b.length); i++) {
              diff = Math.max(diff, Math.abs(a[i] - b[i]));
            }
            out[rate] = {
              pass: [300, 1000, 3000, 6000].map(gain),
              stop: [8600, 9000, 12000, 16000, 20000].map(gain),
              lengths: [a.length, b.length, Math.floor(n * 16000 / rate)],
              diff,
            };
          }
          return out;
        }"""
    )
    for rate, measured in result.items():
        assert all(abs(g) < 0.1 for g in measured["pass"]), (rate, measured["pass"])
        assert all(g < -60 for g in measured["stop"]), (rate, measured["stop"])
        assert measured["lengths"][0] == measured["lengths"][1] == measured["lengths"][2]
        assert measured["diff"] < 1e-5, (rate, measured["diff"])


@pytest.mark.browser
@pytest.mark.timeout(90)
def test_upload_file_then_copy_and_download(
    gateway: ManagedProcess,
    launch: Launch,
    manifest: dict[str, Clip],
    whole_file_text: Any,
    shots: Path,
    tmp_path: Path,
) -> None:
    """Upload a clip to /v1/audio/transcriptions (verbose_json, progress shown, the API key as
    `Authorization: Bearer`), see its transcript (as good as the whole file: promise row
    `file-vs-whole-file`), copy it and download it as .txt and .srt."""
    clip_id = "fleurs-pt-002"
    clip = manifest[clip_id]
    browser = launch()
    context = browser.new_context(viewport=DESKTOP, accept_downloads=True)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=gateway.url)
    page = context.new_page()
    page.goto(f"{gateway.url}/")
    page.wait_for_selector("body[data-ready=true]")
    requests: list[Any] = []
    page.on("request", lambda r: requests.append(r) if "/v1/audio/" in r.url else None)
    page.click(".advanced summary")
    page.fill("#apikey", "demo-key_123")
    page.select_option("#language", "pt")
    page.set_input_files("#upload-file", str(clip.path))
    assert page.inner_text("#upload-file-name") == clip.path.name
    page.click("#upload-submit")
    page.wait_for_function(
        "document.getElementById('upload-text').textContent.startsWith('Pronto')", timeout=60_000
    )
    assert page.evaluate("document.getElementById('upload-progress').value") == 100
    text = final_text(page)
    reference = clip.reference_text
    whole = wer(reference, whole_file_text(clip_id))
    hold("file-vs-whole-file", wer(reference, text), whole, reference, "page upload")
    headers = requests[0].all_headers()
    assert headers["authorization"] == "Bearer demo-key_123"
    assert "multipart/form-data" in headers["content-type"]
    response = requests[0].response()
    assert response is not None and response.status == 200
    assert {"task", "language", "duration", "segments"} <= set(response.json())  # verbose_json
    page.screenshot(path=str(shots / "upload.png"), full_page=True)

    page.click("#copy")
    page.wait_for_function("document.getElementById('copy').textContent === 'Copiado!'")
    assert page.evaluate("navigator.clipboard.readText()") == text
    with page.expect_download() as txt_download:
        page.click("#download-txt")
    assert txt_download.value.path().read_text().strip() == text
    with page.expect_download() as srt_download:
        page.click("#download-srt")
    srt = srt_download.value.path().read_text()
    assert srt_download.value.suggested_filename.endswith(".srt")
    assert re.match(r"1\n00:00:\d\d,\d{3} --> 00:00:\d\d,\d{3}\n\S", srt), srt
    assert " ".join(srt.split("\n")[2::4]).strip() in text
