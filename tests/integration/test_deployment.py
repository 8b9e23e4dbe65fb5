"""The deployment for real: NGINX (rendered from nginx/nginx.conf) in front of two CPU workers,
the gateway, the nginx exporter and Prometheus, all on loopback with free ports.

Load balancing and failover (a busy worker's 503 is retried elsewhere and does not eject it; a
worker killed in the middle of a session costs nothing; it rejoins when restarted), a long file
over two workers against one (the real `python -m api.local_stack`, stopped with SIGINT), and
every PromQL query of docs/operations.md and of the Grafana dashboard evaluated by Prometheus.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import yaml

from bench.scoring import normalize, wer
from launcher.local_stack import LocalStack, start_stack
from launcher.nginx import NginxProcess, make_prefix, nginx_command, write_local_config
from launcher.processes import REPO_ROOT, ManagedProcess, free_port, worker_process
from tests.audio_utils import read_wav, to_pcm16, wav_bytes
from tests.gpu import cuda_devices
from tests.metrics_utils import scrape, value
from tests.promises import hold
from tests.ws_utils import run_session, text_of, transcripts

pytestmark = pytest.mark.nginx

# Three times real time (300 ms frames every 100 ms): the pool keeps up, so windows are cut
# where the audio says and two runs of one clip are comparable.
PACE_MS = 100
FILE_CLIPS = ["fleurs-pt-000", "fleurs-pt-001", "fleurs-pt-002", "fleurs-pt-003", "fleurs-pt-004"]
ONE_THREAD = {"ASR_WORKER_CPU_THREADS": "1"}  # two workers on two cores


@dataclass
class Deployment:
    stack: LocalStack
    exporter: ManagedProcess
    prometheus: ManagedProcess
    prometheus_url: str
    log_dir: Path

    @property
    def gateway(self) -> ManagedProcess:
        assert self.stack.gateway is not None
        return self.stack.gateway

    @property
    def nginx(self) -> NginxProcess:
        assert self.stack.nginx is not None
        return self.stack.nginx

    @property
    def ws_url(self) -> str:
        return self.gateway.url.replace("http", "ws") + "/ws/transcribe"


def binary(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if found is None:
        pytest.skip(f"{name} missing (Debian package; .ci/run installs it)")
    return found


def local_prometheus_config(targets: dict[str, list[str]], labels: dict[str, dict]) -> dict:
    """prometheus.yml with its compose service discovery replaced by local targets: the same
    jobs (all of them, or this fails) and relabelling, scraped every second."""
    config = yaml.safe_load((REPO_ROOT / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == set(targets), "every job of prometheus.yml runs locally"
    for name, job in jobs.items():
        for key in [k for k in job if k.endswith("_sd_configs") or k == "static_configs"]:
            del job[key]
        job["static_configs"] = [{"targets": targets[name], "labels": labels.get(name, {})}]
    return config


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    log_dir = tmp_path_factory.mktemp("deployment")
    exporter_bin, prometheus_bin = binary("prometheus-nginx-exporter"), binary("prometheus")
    stack = start_stack(
        2,
        worker_ports=[free_port(), free_port()],
        worker_envs=[ONE_THREAD, ONE_THREAD],
        nginx_port=free_port(),
        status_port=free_port(),
        gateway_port=free_port(),
        log_dir=log_dir,
    )
    started: list[ManagedProcess] = []
    try:
        assert stack.nginx is not None and stack.gateway is not None
        port = free_port()
        exporter = ManagedProcess(
            "nginx-exporter",
            [
                exporter_bin,
                f"--nginx.scrape-uri={stack.nginx.status_url}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            f"http://127.0.0.1:{port}/metrics",
            log_dir=log_dir,
        )
        started.append(exporter.start().wait_ready(timeout=30))
        prom_port = free_port()
        prom_url = f"http://127.0.0.1:{prom_port}"
        config = local_prometheus_config(
            {
                "gateway": [stack.gateway.url.removeprefix("http://")],
                "asr-workers": [w.url.removeprefix("http://") for w in stack.workers],
                "nginx": [f"127.0.0.1:{port}"],
                "prometheus": [f"127.0.0.1:{prom_port}"],
            },
            {"asr-workers": {"service": "local"}},
        )
        config_path = log_dir / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(config))
        check = subprocess.run(
            [binary("promtool"), "check", "config", str(config_path)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert check.returncode == 0, check.stdout + check.stderr
        prometheus = ManagedProcess(
            "prometheus",
            [
                prometheus_bin,
                f"--config.file={config_path}",
                f"--storage.tsdb.path={log_dir / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
                "--log.level=warn",
            ],
            f"{prom_url}/-/ready",
            log_dir=log_dir,
        )
        started.append(prometheus.start().wait_ready(timeout=60))
        yield Deployment(stack, exporter, prometheus, prom_url, log_dir)
    finally:
        for process in reversed(started):
            process.stop()
        stack.stop()


def transcribe_via(url: str, audio: np.ndarray) -> httpx.Response:
    return httpx.post(
        f"{url}/transcribe",
        files={"file": ("a.pcm", to_pcm16(audio))},
        data={"format": "pcm_s16le", "language": "en", "beam_size": "1"},
        timeout=120,
    )


def requests_ok(worker: ManagedProcess, status: str = "200") -> float:
    return value(
        scrape(worker.url), "asr_worker_requests_total", endpoint="transcribe", status=status
    )


def test_rendered_template_passes_nginx_t() -> None:
    prefix = make_prefix()
    try:
        conf = write_local_config(prefix, ["127.0.0.1:8001", "127.0.0.1:8002"], 8080, 8081)
        result = subprocess.run(
            nginx_command(prefix, conf, test_only=True), capture_output=True, text=True, timeout=30
        )
        assert result.returncode == 0, result.stderr
    finally:
        shutil.rmtree(prefix, ignore_errors=True)


def test_busy_worker_503_is_retried_elsewhere_and_not_ejected(
    deployment: Deployment, manifest, tmp_path: Path
) -> None:
    """A worker with no queue (ASR_WORKER_QUEUE_LIMIT=0) answers 503 to every request that
    would wait; NGINX retries those on the other worker and keeps sending it work."""
    busy = worker_process(
        free_port(),
        env={"ASR_WORKER_QUEUE_LIMIT": "0", **ONE_THREAD},
        log_dir=tmp_path,
        name="busy-worker",
    )
    healthy = deployment.stack.workers[1]
    busy.start().wait_ready(timeout=120)
    servers = [w.url.removeprefix("http://") for w in (busy, healthy)]
    nginx = NginxProcess(servers, free_port(), free_port(), log_dir=tmp_path, name="nginx-busy")
    try:
        nginx.start().wait_ready(timeout=30)
        audio = read_wav(manifest["fleurs-en-003"].path)[: 16000 * 3]

        async def burst(n: int) -> list[int]:
            async with httpx.AsyncClient(timeout=120) as client:
                body = to_pcm16(audio)
                form = {"format": "pcm_s16le", "language": "en", "beam_size": "1"}
                replies = await asyncio.gather(
                    *(
                        client.post(
                            f"{nginx.url}/transcribe", files={"file": ("a", body)}, data=form
                        )
                        for _ in range(n)
                    )
                )
            return [r.status_code for r in replies]

        refused_before = requests_ok(busy, "503")
        assert asyncio.run(burst(6)) == [200] * 6
        refused = requests_ok(busy, "503") - refused_before
        # more than NGINX's default max_fails=1 would have tolerated
        assert refused >= 2, "the burst never found the busy worker busy"
        log = [json.loads(line) for line in nginx.access_log().splitlines()]
        assert any(e["upstream_status"] == "503, 200" for e in log), "503 retried on the other"
        assert "temporarily disabled" not in nginx.error_log()
        served_before = requests_ok(busy)
        for _ in range(4):  # one at a time: least_conn ties alternate between the two
            assert transcribe_via(nginx.url, audio).status_code == 200
            if requests_ok(busy) > served_before:
                break
        else:
            raise AssertionError("the busy worker was taken out of the upstream")
    finally:
        nginx.stop()
        busy.stop()


def test_windows_of_concurrent_sessions_spread_over_both_workers(
    deployment: Deployment, manifest, whole_file_text
) -> None:
    """Two sessions at once, their windows spread over both workers through NGINX; together
    as good as the whole files (promise row `batch-vs-whole-file`)."""
    workers = deployment.stack.workers
    before = [requests_ok(w) for w in workers]
    clips = ["jfk", "fleurs-en-003"]  # 11 s and 5.8 s: three windows of 5 s between them

    async def both() -> list[list[dict[str, Any]]]:
        return await asyncio.gather(
            *(
                run_session(
                    deployment.ws_url,
                    to_pcm16(read_wav(manifest[c].path)),
                    {"language": "en", "partials": False},
                    realtime_ms=PACE_MS,
                )
                for c in clips
            )
        )

    sessions = asyncio.run(both())
    for events in sessions:
        assert "error" not in [e["event"] for e in events]
    references = [manifest[c].reference_text for c in clips]
    measured = wer(references, [text_of(events) for events in sessions])
    whole = wer(references, [whole_file_text(c) for c in clips])
    hold("batch-vs-whole-file", measured, whole, references, "two sessions, two workers")
    served = [requests_ok(w) - b for w, b in zip(workers, before, strict=True)]
    assert all(n >= 1 for n in served), served


def windows_sent(gateway_url: str) -> float:
    return value(scrape(gateway_url), "asr_windows_total", kind="final")


def in_model(worker: ManagedProcess) -> float:
    """Requests inside the model now: those that got a slot (queue time observed) and have not
    finished (inference time observed). asr_worker_in_flight is never set by the worker."""
    try:
        samples = scrape(worker.url)
    except httpx.HTTPError:
        return 0.0
    slots = sum(v for (name, _), v in samples.items() if name == "asr_worker_queue_seconds_count")
    return slots - value(samples, "asr_worker_inference_seconds_count")


def test_worker_killed_mid_session_costs_nothing_and_rejoins(
    deployment: Deployment, manifest
) -> None:
    clip = manifest["fleurs-pt-000"]  # 17.8 s: windows of 5 s, about four of them
    audio = to_pcm16(read_wav(clip.path))
    start = {"language": "pt", "partials": False}
    # Twice real time: the retry of the killed worker's window costs one more model call, and
    # the audio that arrives meanwhile must stay under one window, or the next window is cut
    # "behind" (elsewhere) and the comparison with the uninterrupted run measures that instead.
    pace = 150
    uninterrupted = asyncio.run(run_session(deployment.ws_url, audio, start, realtime_ms=pace))
    workers = deployment.stack.workers

    async def killed_run() -> tuple[list[dict[str, Any]], int, bool]:
        sent_before = windows_sent(deployment.gateway.url)
        session = asyncio.create_task(
            run_session(deployment.ws_url, audio, start, realtime_ms=pace)
        )
        deadline = time.monotonic() + 30
        # the first window is back and the second at a worker: kill that worker in mid-request
        victim, mid_request = 0, False
        while not mid_request:
            assert time.monotonic() < deadline, "no window reached a worker"
            if await asyncio.to_thread(windows_sent, deployment.gateway.url) - sent_before < 2:
                await asyncio.sleep(0.01)
                continue
            for index, worker in enumerate(workers):
                if await asyncio.to_thread(in_model, worker) >= 1:
                    victim, mid_request = index, True
                    break
        workers[victim].kill()  # SIGKILL
        return await session, victim, mid_request

    killed, victim, mid_request = asyncio.run(killed_run())
    assert mid_request

    for events in (uninterrupted, killed):
        kinds = [e["event"] for e in events]
        assert kinds[0] == "ready" and kinds[-1] == "end" and "error" not in kinds
    segments = transcripts(killed)
    assert len(segments) >= 3
    # every window delivered exactly once and in order
    assert [s["segment_id"] for s in segments] == list(range(len(segments)))
    assert all(a["start"] < b["start"] for a, b in itertools.pairwise(segments))
    starts = [w["start"] for s in segments for w in s["words"]]
    assert starts == sorted(starts)
    summary = killed[-1]["summary"]
    assert summary["transcribed_sec"] == pytest.approx(summary["audio_sec"], abs=0.01)
    reference = clip.reference_text
    before, after = wer(reference, text_of(uninterrupted)), wer(reference, text_of(killed))
    hold("resumed-vs-uninterrupted", after, before, reference, "a worker killed")
    # NGINX retried what the dead worker could not answer on the other one
    dead = workers[victim].url.removeprefix("http://")
    log = [json.loads(line) for line in deployment.nginx.access_log().splitlines()]
    assert any(e["upstream"].startswith(f"{dead}, ") and e["status"] == 200 for e in log)

    restarted = deployment.stack.restart_worker(victim)
    deadline = time.monotonic() + 20
    audio_2s = read_wav(manifest["fleurs-en-003"].path)[: 16000 * 2]
    while requests_ok(restarted) < 1:
        assert time.monotonic() < deadline, "the restarted worker never got a request"
        assert transcribe_via(deployment.nginx.url, audio_2s).status_code == 200


def gateway_file(url: str, audio: np.ndarray) -> tuple[float, str]:
    started = time.perf_counter()
    response = httpx.post(
        f"{url}/v1/audio/transcriptions",
        files={"file": ("long.wav", wav_bytes(audio))},
        data={"language": "pt"},  # every piece at once (no detection on the first piece)
        timeout=300,
    )
    assert response.status_code == 200, response.text
    return time.perf_counter() - started, response.json()["text"]


def file_pieces(worker: ManagedProcess) -> float:
    return value(scrape(worker.url), "asr_worker_queue_seconds_count", priority="file")


def port_closed(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def test_long_file_over_two_workers_matches_one_worker(
    deployment: Deployment, manifest, tmp_path: Path
) -> None:
    """63 s of speech (three pieces of <= 30 s): two workers give the same text as one (the
    same pieces to the same engine), sooner. The one-worker stack is the real launcher,
    stopped with SIGINT (Ctrl-C)."""
    audio = np.concatenate([read_wav(manifest[c].path) for c in FILE_CLIPS])
    gateway_port, worker_port = free_port(), free_port()
    launcher = ManagedProcess(
        "local-stack",
        [
            sys.executable,
            "-m",
            "launcher.local_stack",
            "--workers=1",
            f"--port={gateway_port}",
            f"--worker-port={worker_port}",
            f"--log-dir={tmp_path}",
        ],
        f"http://127.0.0.1:{gateway_port}/ready",
        env=ONE_THREAD,
        log_dir=tmp_path,
    )
    launcher.start().wait_ready(timeout=180)
    try:
        one_sec, one_text = gateway_file(launcher.url, audio)
    finally:
        assert launcher.proc is not None
        launcher.proc.send_signal(signal.SIGINT)
        assert launcher.proc.wait(timeout=60) == 0, launcher.tail()
    assert port_closed(gateway_port) and port_closed(worker_port), "Ctrl-C left a process"

    workers = deployment.stack.workers
    pieces_before = [file_pieces(w) for w in workers]
    two_sec, two_text = gateway_file(deployment.gateway.url, audio)
    pieces = [file_pieces(w) - b for w, b in zip(workers, pieces_before, strict=True)]
    assert all(n >= 1 for n in pieces), f"file pieces per worker: {pieces}"
    print(
        f"\nlong file {audio.size / 16000:.1f} s: 1 worker {one_sec:.2f} s, "
        f"2 workers {two_sec:.2f} s, speed-up x{one_sec / two_sec:.2f}"
    )
    assert normalize(two_text) and normalize(two_text) == normalize(one_text)


def promql(deployment: Deployment, query: str) -> dict[str, Any]:
    response = httpx.get(
        f"{deployment.prometheus_url}/api/v1/query", params={"query": query}, timeout=10
    )
    body = response.json()
    assert response.status_code == 200 and body["status"] == "success", (query, body)
    return body["data"]


def documented_queries() -> list[str]:
    docs = (REPO_ROOT / "docs" / "operations.md").read_text()
    queries = [q.strip() for q in re.findall(r"```promql\n(.*?)```", docs, re.S)]
    dashboard = json.loads((REPO_ROOT / "deploy/grafana/dashboards/asr.json").read_text())
    for panel in dashboard["panels"]:
        # Grafana fills $__rate_interval (4 x scrape interval at least); here 1 minute
        queries += [t["expr"].replace("$__rate_interval", "1m") for t in panel["targets"]]
    return queries


def test_prometheus_evaluates_every_documented_query(deployment: Deployment, manifest) -> None:
    # traffic while Prometheus watches: sessions, a refused start (an error) and a file
    gateway = deployment.gateway
    clips = ["fleurs-en-003", "fleurs-en-004"]

    async def traffic() -> None:
        import websockets

        async with websockets.connect(deployment.ws_url) as ws:
            await ws.send(json.dumps({"event": "start", "language": "xx"}))
            assert json.loads(await ws.recv())["code"] == "invalid_config"
        await asyncio.gather(
            *(
                run_session(
                    deployment.ws_url,
                    to_pcm16(read_wav(manifest[c].path)),
                    {"language": "en"},
                    realtime_ms=PACE_MS,
                )
                for c in clips
            )
        )

    asyncio.run(traffic())
    gateway_file(gateway.url, read_wav(manifest["fleurs-en-004"].path))
    sessions = value(scrape(gateway.url), "asr_sessions_total")
    deadline = time.monotonic() + 30
    while True:  # Prometheus has seen the traffic
        seen = promql(deployment, "sum(asr_sessions_total)")["result"]
        if seen and float(seen[0]["value"][1]) >= sessions:
            break
        assert time.monotonic() < deadline, "Prometheus never saw the sessions"
        time.sleep(0.5)

    targets = httpx.get(f"{deployment.prometheus_url}/api/v1/targets", timeout=10).json()
    health = {(t["labels"]["job"], t["health"]) for t in targets["data"]["activeTargets"]}
    jobs = {
        job["job_name"]
        for job in yaml.safe_load((REPO_ROOT / "prometheus.yml").read_text())["scrape_configs"]
    }
    assert health == {(job, "up") for job in jobs}, health

    # every query has data (GPU ones: test_gpu_queries_have_data, on a GPU); a rate() needs
    # two scrapes after the traffic, so each is polled until it answers
    for query in documented_queries():
        if "nvidia_gpu" in query:
            continue
        deadline = time.monotonic() + 20
        while not (result := promql(deployment, query)["result"]):
            assert time.monotonic() < deadline, f"no data for {query!r}"
            time.sleep(0.5)
        values = [float(r["value"][1]) for r in result]
        if "histogram_quantile" in query:
            assert any(math.isfinite(v) for v in values), (query, values)


@pytest.mark.gpu
@pytest.mark.skipif(cuda_devices() == 0, reason="no CUDA device visible")
def test_gpu_queries_have_data(deployment: Deployment) -> None:
    """On a GPU machine the deployment's workers run on CUDA: the documented GPU queries
    (nvidia_gpu_*, by host GPU) have data."""
    queries = [q for q in documented_queries() if "nvidia_gpu" in q]
    assert queries
    for query in queries:
        deadline = time.monotonic() + 30
        while not promql(deployment, query)["result"]:
            assert time.monotonic() < deadline, f"no data for {query!r}"
            time.sleep(0.5)
