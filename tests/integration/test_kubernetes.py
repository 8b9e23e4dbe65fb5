"""What the Kubernetes manifests (deploy/k8s) rely on, for real, on loopback (no cluster here):

- NGINX follows the workers' headless Service: the rendered nginx/nginx.conf, the reresolve
  sidecar of the NGINX pod (deploy/k8s/base/nginx/reresolve.py, exactly as the pod runs it, with
  a pod's resolv.conf) and Debian's NGINX, with Debian's dnsmasq standing in for the cluster DNS.
  Workers join, leave (a request in flight on the one leaving still finishes) and all go away.
- Sessions across gateway pods: two real gateways behind an NGINX configured as the Ingress's
  annotations say; the pod holding a session is killed (a node lost) or drained (SIGTERM, as
  Kubernetes stops a pod after its preStop): the client continues on the other with no audio
  lost and the text of an uninterrupted run.
- The autoscalers' PromQL (the ScaledObjects' queries, verbatim) evaluated by a real Prometheus
  that scrapes a running gateway and worker labelled as the PodMonitors label them.
"""

from __future__ import annotations

import asyncio
import http.server
import json
import math
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from bench.scoring import wer
from client.resilient import ResilientStream
from launcher.nginx import make_prefix, nginx_command, write_local_config
from launcher.processes import ManagedProcess, free_port, gateway_process
from tests.audio_utils import read_wav, to_pcm16
from tests.k8s_utils import (
    NAMESPACE,
    POD_RESOLV_CONF,
    RERESOLVE,
    WORKER_SERVICE,
    DnsServer,
    binary,
    find,
    ingress_nginx_config,
    metric_names,
    one,
    prometheus_config,
    render,
    wait_until,
)
from tests.metrics_utils import scrape, value
from tests.promises import hold
from tests.words_utils import assert_in_order_once, transcript_words
from tests.ws_utils import run_session, text_of

pytestmark = pytest.mark.nginx

CLIP = "fleurs-pt-000"  # 17.8 s, 36 words: the clip of the gateway-restart fault test
START = {"language": "pt", "profile": "balanced", "partials": False}
RATE = 16000
POOL_FQDN = f"{WORKER_SERVICE}.{NAMESPACE}.svc.cluster.local"
WORKERS = ("127.0.0.2", "127.0.0.3")  # loopback addresses of two stand-in worker pods


# ---- NGINX follows the workers' DNS ---------------------------------------------------------


class StandInWorker(http.server.ThreadingHTTPServer):
    """Answers like a worker's /ready, saying which address it is; /slow takes 2 s."""

    daemon_threads = True

    def __init__(self, address: str, port: int) -> None:
        self.slow_started = threading.Event()
        super().__init__((address, port), StandInHandler)
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class StandInHandler(http.server.BaseHTTPRequestHandler):
    server: StandInWorker

    def do_GET(self) -> None:
        if self.path == "/slow":
            self.server.slow_started.set()
            time.sleep(2.0)
        body = json.dumps({"address": self.server.server_address[0]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def stand_in_workers() -> tuple[int, dict[str, StandInWorker]]:
    """One port free on every address of WORKERS (a pod's port is the same on every pod)."""
    for _ in range(20):
        port = free_port()
        started: dict[str, StandInWorker] = {}
        try:
            for address in WORKERS:
                started[address] = StandInWorker(address, port)
        except OSError:
            for server in started.values():
                server.stop()
            continue
        return port, started
    raise RuntimeError("no port free on every stand-in address")


@pytest.mark.timeout(120)
def test_nginx_follows_the_worker_pools_dns(tmp_path: Path, log_dir: Path) -> None:
    port, workers = stand_in_workers()
    dns = DnsServer(tmp_path / "dns", log_dir, name="k8s-dnsmasq")
    resolv = tmp_path / "resolv.conf"
    resolv.write_text(POD_RESOLV_CONF)  # search <namespace>.svc.cluster.local ..., ndots:5
    prefix = make_prefix()
    listen, status = free_port(), free_port()
    # the cluster's configuration: the template rendered with the Service's short name
    template = write_local_config(prefix, [f"{WORKER_SERVICE}:{port}"], listen, status)
    live = prefix / "conf" / "live.conf"
    sidecar_argv = [
        sys.executable,
        str(RERESOLVE),
        f"--template={template}",
        f"--output={live}",
        f"--dns-server={dns.server}",  # the pod's resolv.conf, with our DNS in place of kube-dns
        f"--resolv-conf={resolv}",
    ]
    nginx = ManagedProcess(
        "k8s-nginx",
        nginx_command(prefix, live),
        f"http://127.0.0.1:{listen}/ready",
        log_dir=log_dir,
    )
    sidecar = ManagedProcess(
        "k8s-reresolve",
        [*sidecar_argv, f"--pid-file={prefix / 'nginx.pid'}", "--interval=0.2"],
        None,
        log_dir=log_dir,
    )
    url = f"http://127.0.0.1:{listen}"

    def served_by(requests: int = 8) -> set[str | int]:
        """Which workers answered (their address), or NGINX's status when none did."""
        out: set[str | int] = set()
        for _ in range(requests):
            response = httpx.get(f"{url}/ready", timeout=5)
            out.add(
                response.json()["address"] if response.status_code == 200 else response.status_code
            )
        return out

    try:
        dns.start().wait_ready()
        dns.set({POOL_FQDN: [WORKERS[0]]})
        # the init container: the first configuration, before NGINX starts
        first = subprocess.run(
            [*sidecar_argv, "--once"], capture_output=True, text=True, timeout=30, check=False
        )
        assert first.returncode == 0, first.stdout + first.stderr
        assert f"server {WORKERS[0]}:{port} max_fails=10 fail_timeout=5s;" in live.read_text()
        nginx.start().wait_ready(timeout=30)
        sidecar.start()
        assert served_by() == {WORKERS[0]}

        # a second worker turns ready: NGINX sends it requests within a few intervals
        dns.set({POOL_FQDN: list(WORKERS)})
        wait_until(lambda: served_by() == set(WORKERS), 15, "both workers serve")

        # a worker leaves (terminating, no longer ready) while it holds a request
        result: dict[str, httpx.Response] = {}
        slow = threading.Thread(
            target=lambda: result.setdefault("r", httpx.get(f"{url}/slow", timeout=15))
        )
        slow.start()
        holder = wait_until(
            lambda: next((a for a, w in workers.items() if w.slow_started.is_set()), None),
            5,
            "the slow request reached a worker",
        )
        stays = next(a for a in WORKERS if a != holder)
        dns.set({POOL_FQDN: [stays]})
        wait_until(lambda: served_by(10) == {stays}, 15, f"only {stays} serves")
        slow.join(timeout=15)
        # the reload was graceful: the request in flight finished on the worker that left
        assert result["r"].status_code == 200 and result["r"].json() == {"address": holder}

        # no worker ready at all: one `down` server, NGINX answers 502 (the gateway retries)
        dns.set({})
        wait_until(lambda: served_by(3) == {502}, 15, "502 without workers")
        assert "server 127.0.0.1:" in live.read_text() and " down;" in live.read_text()
        dns.set({POOL_FQDN: [stays]})
        wait_until(lambda: served_by(3) == {stays}, 15, "a worker back")

        assert sidecar.alive and nginx.alive
        events = [
            json.loads(line) for line in sidecar.log_text().splitlines() if line.startswith("{")
        ]
        reloads = [e for e in events if e["event"] == "nginx_reloaded"]
        assert len(reloads) >= 4, events  # joined, left, none, back
        assert "[emerg]" not in (prefix / "logs" / "error.log").read_text()
    finally:
        sidecar.stop()
        nginx.stop()
        dns.stop()
        for server in workers.values():
            server.stop()
        for kind in ("error", "access"):
            log = prefix / "logs" / f"{kind}.log"
            if log.exists():
                shutil.copy(log, log_dir / f"k8s-nginx-{kind}.log")
        shutil.rmtree(prefix, ignore_errors=True)


# ---- sessions across gateway pods -------------------------------------------------------------


class Edge:
    """Two real gateways (pods) behind an NGINX configured as the Ingress says."""

    def __init__(self, worker: ManagedProcess, log_dir: Path, name: str) -> None:
        ingress = one(render("cpu"), "Ingress", "asr-gateway")
        self.gateways = [
            gateway_process(free_port(), worker.url, log_dir=log_dir, name=f"{name}-gateway-{i}")
            for i in range(2)
        ]
        self.prefix = make_prefix()
        self.port = free_port()
        servers = [g.url.removeprefix("http://") for g in self.gateways]
        conf = self.prefix / "conf" / "nginx.conf"
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.write_text(ingress_nginx_config(ingress, servers, self.port, self.prefix))
        self.nginx = ManagedProcess(
            f"{name}-ingress",
            nginx_command(self.prefix, conf),
            f"http://127.0.0.1:{self.port}/ready",
            log_dir=log_dir,
        )
        self.log_dir = log_dir
        self.ws_url = f"ws://127.0.0.1:{self.port}/ws/transcribe"

    def start(self) -> Edge:
        for gateway in self.gateways:
            gateway.start()
        for gateway in self.gateways:
            gateway.wait_ready(timeout=60)
        self.nginx.start().wait_ready(timeout=30)
        return self

    def holder(self) -> ManagedProcess | None:
        """The gateway that holds the one open session."""
        for gateway in self.gateways:
            if gateway.alive and value(scrape(gateway.url), "asr_active_sessions") >= 1:
                return gateway
        return None

    def stop(self) -> None:
        self.nginx.stop()
        for gateway in self.gateways:
            gateway.stop()
        error = self.prefix / "logs" / "error.log"
        if error.exists():
            shutil.copy(error, self.log_dir / f"{self.nginx.name}-error.log")
        shutil.rmtree(self.prefix, ignore_errors=True)


@pytest.fixture
def edge(worker: ManagedProcess, log_dir: Path, request: pytest.FixtureRequest) -> Iterator[Edge]:
    stack = Edge(worker, log_dir, f"k8s-{request.node.name[5:25]}")
    try:
        yield stack.start()
    finally:
        stack.stop()


async def session_with_fault(edge: Edge, audio: bytes, fault: str) -> ResilientStream:
    """A real-time session through the Ingress stand-in; 6 s in, the gateway holding it is
    killed (SIGKILL: a node lost) or stopped (SIGTERM: a pod deleted, scaled down, updated)."""
    stream = ResilientStream(edge.ws_url, START)
    player = asyncio.create_task(stream.play(audio, realtime=True, frame_ms=300))
    runner = asyncio.create_task(stream.run())
    await asyncio.sleep(6.0)
    holder = await asyncio.to_thread(wait_until, edge.holder, 10, "a gateway holds the session")
    assert holder.proc is not None
    if fault == "kill":
        holder.kill()
    else:
        holder.proc.send_signal(signal.SIGTERM)
    await player
    await asyncio.wait_for(runner, timeout=120)
    assert all(g.alive for g in edge.gateways if g is not holder)
    return stream


def check_text(fault: str, reference: str, uninterrupted: str, events: list[dict]) -> None:
    """As good as the uninterrupted run (promise row `resumed-vs-uninterrupted`)."""
    measured, before = wer(reference, text_of(events)), wer(reference, uninterrupted)
    hold("resumed-vs-uninterrupted", measured, before, reference, f"gateway pod {fault}")


@pytest.mark.timeout(240)
def test_session_survives_its_gateway_pod_being_killed(edge: Edge, manifest) -> None:
    """The pod holding the session dies: the client's reconnect lands on the other pod (NGINX
    skips the dead one), which does not know the session (`resume_unknown`); the client starts
    a new session on the same timeline from its committed offset, with the audio before it as
    context. Nothing is lost, nothing comes twice, the text is an uninterrupted run's."""
    clip = manifest[CLIP]
    audio = to_pcm16(read_wav(clip.path))
    uninterrupted = asyncio.run(run_session(edge.ws_url, audio, START, realtime_ms=150))
    assert [e for e in uninterrupted if e["event"] == "error"] == []
    stream = asyncio.run(session_with_fault(edge, audio, "kill"))

    assert len(stream.sessions) == 2
    # started; tried to resume on the other pod, which answered resume_unknown; started anew
    assert ["resume" in start for start in stream.starts_sent] == [False, True, False]
    first_acks = [e["committed_offset"] for e in stream.events if e["event"] == "ack"]
    fresh = stream.starts_sent[-1]
    # 0 audio lost: the new session's timeline starts where the lost one had committed ...
    assert 0 < fresh["timeline_offset"] <= clip.duration_s * RATE
    assert fresh["timeline_offset"] in first_acks
    assert 0 < fresh["context_samples"] <= 5 * RATE and fresh["context_word_starts"]
    # ... and it transcribed everything after that, to the end of the clip
    ends = [e for e in stream.events if e["event"] == "end"]
    assert len(ends) == 1
    summary = ends[0]["summary"]
    assert summary["audio_sec"] == pytest.approx(clip.duration_s, abs=0.01)
    assert summary["transcribed_sec"] == pytest.approx(clip.duration_s, abs=0.01)
    assert summary["failed_spans"] == []
    assert [e for e in stream.events if e["event"] == "error"] == []
    assert_in_order_once(transcript_words(stream.events))
    check_text("killed", clip.reference_text, text_of(uninterrupted), stream.events)


@pytest.mark.timeout(240)
def test_session_continues_when_its_gateway_pod_drains(edge: Edge, manifest) -> None:
    """Kubernetes stops a pod (rolling update, scale-down, node drain) with SIGTERM after its
    preStop: the gateway stops accepting, finishes the session's windows, sends `end` and
    closes with 1001. The client, which did not ask to stop, starts a new session through the
    Ingress (on the other pod) from what the first one transcribed."""
    clip = manifest[CLIP]
    audio = to_pcm16(read_wav(clip.path))
    uninterrupted = asyncio.run(run_session(edge.ws_url, audio, START, realtime_ms=150))
    stream = asyncio.run(session_with_fault(edge, audio, "drain"))

    assert len(stream.sessions) == 2
    assert ["resume" in start for start in stream.starts_sent] == [False, False]
    ends = [e for e in stream.events if e["event"] == "end"]
    assert len(ends) == 2  # the drained session's, then the whole stream's
    drained = ends[0]["summary"]
    # everything the drained pod received was transcribed before it closed
    assert drained["transcribed_sec"] == pytest.approx(drained["audio_sec"], abs=0.01)
    assert drained["failed_spans"] == []
    fresh = stream.starts_sent[-1]
    # (transcribed_sec is rounded to the millisecond: 16 samples)
    assert abs(fresh["timeline_offset"] - drained["transcribed_sec"] * RATE) <= 8
    last = ends[-1]["summary"]
    assert last["audio_sec"] == pytest.approx(clip.duration_s, abs=0.01)
    assert last["transcribed_sec"] == pytest.approx(clip.duration_s, abs=0.01)
    assert [e for e in stream.events if e["event"] == "error"] == []
    assert_in_order_once(transcript_words(stream.events))
    check_text("drained", clip.reference_text, text_of(uninterrupted), stream.events)


# ---- the autoscalers' queries ---------------------------------------------------------------


def promql(url: str, query: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{url}/api/v1/query", params={"query": query}, timeout=10)
    body = response.json()
    assert response.status_code == 200 and body["status"] == "success", (query, body)
    return body["data"]["result"]


@pytest.mark.timeout(180)
def test_autoscaler_queries_see_the_running_services(
    worker: ManagedProcess, log_dir: Path, manifest, tmp_path: Path
) -> None:
    """Each ScaledObject's metric is in the live /metrics of the service it scales, and its
    query, as written in the manifest, gives KEDA one number: the open sessions while a session
    runs, the workers' requests in flight."""
    objects = render("cpu")
    scaled = {s["spec"]["scaleTargetRef"]["name"]: s for s in find(objects, "ScaledObject")}
    gateway = gateway_process(free_port(), worker.url, log_dir=log_dir, name="k8s-metrics-gateway")
    prom_port = free_port()
    prom_url = f"http://127.0.0.1:{prom_port}"
    config = prometheus_config(
        find(objects, "PodMonitor"),
        {
            "asr-gateway": gateway.url.removeprefix("http://"),
            "asr-worker": worker.url.removeprefix("http://"),
        },
    )
    config_path = tmp_path / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(config))
    prometheus = ManagedProcess(
        "k8s-prometheus",
        [
            binary("prometheus"),
            f"--config.file={config_path}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
            "--log.level=warn",
        ],
        f"{prom_url}/-/ready",
        log_dir=log_dir,
    )
    audio = to_pcm16(read_wav(manifest[CLIP].path))
    try:
        gateway.start().wait_ready(timeout=60)
        live = {
            "asr-gateway": {name for name, _ in scrape(gateway.url)},
            "asr-worker": {name for name, _ in scrape(worker.url)},
        }
        queries = {}
        for target, obj in scaled.items():
            (trigger,) = obj["spec"]["triggers"]
            query = trigger["metadata"]["query"]
            assert metric_names(query) <= live[target], (query, live[target])
            queries[target] = (query, float(trigger["metadata"]["threshold"]))
        prometheus.start().wait_ready(timeout=60)

        async def during_a_session() -> list[dict[str, Any]]:
            session = asyncio.create_task(
                run_session(
                    gateway.url.replace("http", "ws") + "/ws/transcribe",
                    audio,
                    START,
                    realtime_ms=300,
                )
            )
            query = queries["asr-gateway"][0]
            seen = await asyncio.to_thread(
                wait_until,
                lambda: [r for r in promql(prom_url, query) if float(r["value"][1]) == 1.0],
                20,
                f"{query} = 1 while one session is open",
                0.5,
            )
            await session
            return seen

        seen = asyncio.run(during_a_session())
        assert len(seen) == 1  # one number, as KEDA needs
        query, threshold = queries["asr-worker"]
        result = wait_until(lambda: promql(prom_url, query), 20, f"{query} has data", 0.5)
        (sample,) = result
        in_flight = float(sample["value"][1])
        assert math.isfinite(in_flight) and in_flight >= 0
        # what the HPA would ask for: one worker for this one session
        assert max(1, math.ceil(in_flight / threshold)) == 1
        up = promql(prom_url, 'up{job="asr-workers", service="asr-worker", node="local-node"}')
        assert [float(r["value"][1]) for r in up] == [1.0]  # the dashboard's labels
    finally:
        prometheus.stop()
        gateway.stop()
