"""Soak (slow; `make soak`): 16 concurrent sessions for 2 minutes through NGINX and two
workers. No errors, every second received is transcribed, the gateway's memory stays flat.

Memory is measured from after one warm-up session (one-off costs are not growth) to after the
soak, and sampled every second for the peak. Bounds: peak +120 MB, after +50 MB."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from bench.resources import Sampler, rss_bytes
from launcher.local_stack import start_stack
from launcher.processes import free_port
from tests.audio_utils import read_wav, to_pcm16
from tests.metrics_utils import scrape, value
from tests.ws_utils import run_session

SESSIONS = 16
SECONDS = 120
CLIPS = ["pt-longform-dev", "cuttledoc-pt-tts-adam", "cuttledoc-pt-tts-raquel"]


@pytest.mark.slow
@pytest.mark.nginx
@pytest.mark.timeout(1200)
def test_soak_16_sessions_two_minutes(manifest, log_dir) -> None:
    rng = np.random.default_rng(7)
    sources = [read_wav(manifest[c].path) for c in CLIPS]
    audios = []
    for index in range(SESSIONS):  # different clips and random offsets: no lockstep
        source = sources[index % len(sources)]
        start = int(rng.integers(0, max(1, source.size - SECONDS * 16000)))
        piece = np.resize(source[start:], SECONDS * 16000)
        audios.append(to_pcm16(piece))
    stack = start_stack(
        2,
        worker_ports=[free_port(), free_port()],
        nginx_port=free_port(),
        status_port=free_port(),
        gateway_port=free_port(),
        log_dir=log_dir,
    )
    try:
        assert stack.gateway is not None and stack.gateway.proc is not None
        url = stack.gateway.url.replace("http", "ws") + "/ws/transcribe"
        gateway = [stack.gateway.proc.pid]
        asyncio.run(run_session(url, audios[0][: 5 * 32000], {"language": "pt", "partials": False}))
        rss_before = rss_bytes(gateway)
        warm = scrape(stack.gateway.url)
        sampler = Sampler(gateway, interval_sec=1.0).start()

        async def all_sessions() -> list[list[dict]]:
            start = {"language": "pt", "partials": False}
            return await asyncio.gather(
                *(run_session(url, audio, start, realtime_ms=300) for audio in audios)
            )

        began = time.monotonic()
        results = asyncio.run(all_sessions())
        wall = time.monotonic() - began
        usage = sampler.stop()
        rss_after = rss_bytes(gateway)
        metrics = scrape(stack.gateway.url)
    finally:
        stack.stop()
    growth_mb = (rss_after - rss_before) / 2**20
    peak_mb = (max(usage.rss_max, rss_after) - rss_before) / 2**20
    print(
        f"soak: {SESSIONS} sessions x {SECONDS} s in {wall:.0f} s; gateway RSS"
        f" {rss_before / 2**20:.0f} MB after warm-up, peak +{peak_mb:.1f} MB,"
        f" after +{growth_mb:.1f} MB"
    )
    errors = [e for events in results for e in events if e["event"] == "error"]
    assert errors == []
    for events in results:
        summary = events[-1]["summary"]
        assert summary["audio_sec"] == pytest.approx(SECONDS, abs=0.01)
        assert summary["transcribed_sec"] == pytest.approx(summary["audio_sec"], abs=0.01)
        assert summary["words"] > 100

    def seconds(stage: str) -> float:  # during the soak, without the warm-up session
        return value(metrics, "asr_audio_seconds_total", stage=stage) - value(
            warm, "asr_audio_seconds_total", stage=stage
        )

    assert seconds("received") == pytest.approx(SESSIONS * SECONDS, abs=0.1)
    assert seconds("transcribed") == pytest.approx(seconds("received"), abs=0.5)
    # measured: peak +60 MB (16 sessions held at their 30 s backlog limit), after +14 MB
    assert peak_mb < 120
    assert growth_mb < 50
