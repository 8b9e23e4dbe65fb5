"""Static checks of the deployment files: docker-compose.yml (+ the CPU override),
prometheus.yml, the Grafana provisioning, the Dockerfiles and the NGINX template renderer.

`docker-compose config` (Debian's Compose 1.29: no engine needed) and `promtool` (Debian's
prometheus package) are installed by .ci/run.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from api.metrics import GatewayMetrics
from api.vad_model import MODEL_SHA256
from asr.metrics import WorkerMetrics
from launcher.nginx_config import CONTAINER_LAYOUT, render

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
CPU_OVERRIDE = ROOT / "docker-compose.cpu.yml"
REFERENCE = ROOT / "docker-compose.reference.yml"  # the reference's 8+8+6+8 layout
PROMETHEUS = ROOT / "prometheus.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "asr.json"
OPERATIONS = ROOT / "docs" / "operations.md"
GPUS = {"0": 8, "1": 8, "2": 6, "3": 8}


class Reset:
    """Compose's `!reset` tag (drop a value from the files before)."""


class ComposeLoader(yaml.SafeLoader):
    pass


ComposeLoader.add_constructor("!reset", lambda loader, node: Reset())


def load(path: Path) -> dict[str, Any]:
    return yaml.load(path.read_text(), Loader=ComposeLoader)  # SafeLoader plus the one tag


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load(COMPOSE)


@pytest.fixture(scope="module")
def services(compose) -> dict[str, Any]:
    return compose["services"]


def worker_services(services: dict[str, Any]) -> dict[str, Any]:
    return {name: svc for name, svc in services.items() if name.startswith("asr-worker")}


def option(argv: list[str], name: str) -> list[str]:
    """Values of --name=value in a command list."""
    return [arg.split("=", 1)[1] for arg in argv if arg.startswith(f"--{name}=")]


def test_one_batching_worker_per_gpu_by_default(services) -> None:
    """The recommendation (docs/operations.md, "GPU layout"): one worker per GPU, batching the
    windows of all sessions, two calls at once, a queue for what the sessions keep in flight."""
    per_gpu = {}
    for name, svc in worker_services(services).items():
        (device,) = svc["deploy"]["resources"]["reservations"]["devices"]
        per_gpu[device["device_ids"][0]] = svc["deploy"]["replicas"]
        env = svc["environment"]
        assert env["ASR_WORKER_BATCHING"] == "on", name
        assert int(env["ASR_WORKER_MAX_BATCH"]) == 16 and int(env["ASR_WORKER_CONCURRENCY"]) == 2
        # every window a full batch of sessions keeps in flight can wait: none is refused
        assert int(env["ASR_WORKER_QUEUE_LIMIT"]) >= 2 * int(env["ASR_WORKER_MAX_BATCH"])
    assert per_gpu == {"0": 1, "1": 1, "2": 1, "3": 1}
    text = COMPOSE.read_text()
    assert "docker compose -f docker-compose.yml -f docker-compose.reference.yml" in text


def reference_services(services: dict[str, Any]) -> dict[str, Any]:
    """The worker groups as the reference override leaves them (Compose merges mappings)."""
    override = load(REFERENCE)["services"]
    assert set(override) == set(worker_services(services)), "only the worker groups change"
    merged = {}
    for name, svc in worker_services(services).items():
        merged[name] = {
            **svc,
            "environment": {**svc["environment"], **override[name]["environment"]},
            "deploy": {**svc["deploy"], **override[name]["deploy"]},
        }
    return merged


def test_reference_layout_thirty_workers_pinned_8_8_6_8_to_four_gpus(services) -> None:
    per_gpu: dict[str, int] = {}
    for name, svc in reference_services(services).items():
        assert svc["environment"]["ASR_WORKER_BATCHING"] == "off"
        assert svc["environment"]["ASR_WORKER_CONCURRENCY"] == "1"
        (device,) = svc["deploy"]["resources"]["reservations"]["devices"]
        assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"], name
        (gpu,) = device["device_ids"]
        assert gpu not in per_gpu, f"two worker services on GPU {gpu}"
        per_gpu[gpu] = svc["deploy"]["replicas"]
        assert name == f"asr-worker-gpu{gpu}"
        # inside the container the one GPU is index 0; metrics carry the host index
        assert svc["environment"]["ASR_WORKER_DEVICE_INDEX"] == "0"
        assert svc["environment"]["ASR_WORKER_GPU_LABEL"] == gpu
    assert per_gpu == GPUS
    assert sum(per_gpu.values()) == 30


def test_workers_run_medium_int8_float16_from_the_shared_cache(services) -> None:
    fetch = services["model-fetch"]
    fetch_mounts = dict(volume.split(":")[:2] for volume in fetch["volumes"])
    assert (
        fetch["command"][-1] == "deploy/fetch_model.py"
        and (ROOT / "deploy/fetch_model.py").is_file()
    )
    assert fetch["restart"] == "no"
    for name, svc in worker_services(services).items():
        env = svc["environment"]
        assert env["ASR_WORKER_MODEL"] == "medium" == fetch["environment"]["ASR_WORKER_MODEL"]
        assert env["ASR_WORKER_COMPUTE_TYPE"] == "int8_float16"
        assert env["ASR_WORKER_DEVICE"] == "cuda"
        assert env["ASR_WORKER_HOST"] == "0.0.0.0"
        assert env["HF_HUB_OFFLINE"] == "1", "workers must never download (model-fetch does)"
        models_dir = env["ASR_WORKER_MODELS_DIR"]
        assert models_dir == fetch["environment"]["ASR_WORKER_MODELS_DIR"]
        mounts = dict(volume.split(":")[:2] for volume in svc["volumes"])
        volume = {target: source for source, target in mounts.items()}[models_dir]
        assert fetch_mounts[volume] == models_dir, f"{name} and model-fetch share {volume}"
        assert svc["depends_on"]["model-fetch"]["condition"] == "service_completed_successfully"
        assert svc["image"] == fetch["image"]
        assert "/ready" in " ".join(svc["healthcheck"]["test"])
        assert svc["restart"] == "unless-stopped"


def test_nginx_upstream_reaches_every_worker_group(services) -> None:
    workers = worker_services(services)
    render_cmd = services["nginx-config"]["command"]
    assert render_cmd[:3] == ["python", "-m", "launcher.nginx_config"]
    ports = {svc["environment"]["ASR_WORKER_PORT"] for svc in workers.values()}
    assert ports == {"8001"}
    assert set(option(render_cmd, "server")) == {f"{name}:8001" for name in workers}
    (listen,) = option(render_cmd, "listen")
    (status_listen,) = option(render_cmd, "status-listen")
    config = render(option(render_cmd, "server"), listen, status_listen, CONTAINER_LAYOUT)
    for name in workers:
        assert re.search(rf"^\s+server {name}:8001 max_fails=\d+ fail_timeout=\w+;$", config, re.M)
    assert f"listen {listen};" in config
    nginx = services["stack-asr"]
    assert nginx["container_name"] == "stack-asr"
    assert "/etc/nginx/rendered/nginx.conf" in nginx["command"]
    for name in workers:  # every replica exists (and is warm) when NGINX resolves the names
        assert nginx["depends_on"][name]["condition"] == "service_healthy"
    assert nginx["depends_on"]["nginx-config"]["condition"] == "service_completed_successfully"
    assert "/ready" in " ".join(nginx["healthcheck"]["test"])
    gateway = services["stack-api"]
    assert gateway["container_name"] == "stack-api"
    env = gateway["environment"]
    assert env["ASR_UPSTREAM_URL"] == f"http://stack-asr:{listen}"
    assert env["ASR_HOST"] == "0.0.0.0"
    assert "ASR_BATCH_WINDOW_SEC" in env
    assert float(env["ASR_REQUEST_TIMEOUT_SEC"]) > 60 + 10  # NGINX read timeout + retry window
    assert gateway["depends_on"]["stack-asr"]["condition"] == "service_healthy"
    exporter = services["nginx-exporter"]
    assert option(exporter["command"], "nginx.scrape-uri") == [
        f"http://stack-asr:{status_listen}/stub_status"
    ]


def test_nginx_template_matches_the_gateway_and_worker_limits() -> None:
    config = render(["w:8001"], "8080", "8081", CONTAINER_LAYOUT)
    directives = {
        "least_conn;",
        "keepalive 128;",
        "proxy_next_upstream error timeout http_502 http_503 non_idempotent;",
        "proxy_next_upstream_tries 2;",
        "proxy_read_timeout 60s;",
        "client_max_body_size 100m;",
        "stub_status;",
    }
    lines = {line.strip() for line in config.splitlines()}
    assert directives <= lines, directives - lines
    assert "location = /ws {" not in lines  # the worker has no WebSocket endpoint
    from api.config import GatewaySettings
    from asr.config import WorkerSettings

    assert WorkerSettings().max_upload_bytes == 100 * 1024 * 1024  # = client_max_body_size 100m
    assert GatewaySettings().request_timeout_sec > 60 + 10


def test_render_repeats_server_lines_and_refuses_unknown_placeholders() -> None:
    template = (
        "# {{ server }} and {{ name }} in a comment stay\n"
        "upstream u {\n    server {{ server }} max_fails=3;\n}\nlisten {{ listen }};\n"
    )
    out = render(["a:1", "b:2"], "8080", "8081", CONTAINER_LAYOUT, template)
    assert out.splitlines() == [
        "# {{ server }} and {{ name }} in a comment stay",
        "upstream u {",
        "    server a:1 max_fails=3;",
        "    server b:2 max_fails=3;",
        "}",
        "listen 8080;",
    ]
    with pytest.raises(KeyError, match="nope"):
        render(["a:1"], "1", "2", CONTAINER_LAYOUT, "x {{ nope }};")
    with pytest.raises(ValueError):
        render([], "1", "2", CONTAINER_LAYOUT)


def test_render_cli_writes_the_compose_config(tmp_path: Path) -> None:
    out = tmp_path / "rendered" / "nginx.conf"
    servers = [f"--server=asr-worker-gpu{i}:8001" for i in range(4)]
    result = subprocess.run(
        [sys.executable, "-m", "launcher.nginx_config", *servers, f"--output={out}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    assert text.count("server asr-worker-gpu") == 4
    assert "pid /tmp/nginx.pid;" in text and "error_log stderr warn;" in text


def test_prometheus_scrapes_every_service(services) -> None:
    config = yaml.safe_load(PROMETHEUS.read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    static = {
        name: {t for sc in job.get("static_configs", []) for t in sc["targets"]}
        for name, job in jobs.items()
    }
    assert static["gateway"] == {f"stack-api:{services['stack-api']['environment']['ASR_PORT']}"}
    (dns,) = jobs["asr-workers"]["dns_sd_configs"]
    assert set(dns["names"]) == set(worker_services(services)), "every worker group scraped"
    assert dns["type"] == "A" and dns["port"] == 8001
    # the worker group as a target label, never `gpu` (the workers' own label on nvidia_gpu_*)
    targets = {r.get("target_label") for r in jobs["asr-workers"]["relabel_configs"]}
    assert "service" in targets and "gpu" not in targets
    assert static["nginx"] == {"nginx-exporter:9113"}
    assert services["nginx-exporter"]["expose"] == ["9113"]
    prometheus = services["prometheus"]
    assert "./prometheus.yml:/etc/prometheus/prometheus.yml:ro" in prometheus["volumes"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]


def test_promtool_accepts_prometheus_yml() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool missing (Debian: apt-get install prometheus)")
    result = subprocess.run(
        [promtool, "check", "config", str(PROMETHEUS)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_grafana_is_provisioned_with_the_dashboard(services) -> None:
    grafana = services["grafana"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in grafana["volumes"]}
    provisioning = ROOT / mounts["/etc/grafana/provisioning"]
    (datasource,) = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())[
        "datasources"
    ]
    assert datasource["url"] == "http://prometheus:9090"
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "asr.yml").read_text())["providers"]
    assert ROOT / mounts[provider["options"]["path"]] == DASHBOARD.parent
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = []
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == datasource["uid"], panel["title"]
        exprs += [target["expr"] for target in panel["targets"]]
    joined = "\n".join(exprs)
    for needed in (
        "histogram_quantile(0.95, sum by (le) (rate(asr_batch_duration_seconds_bucket",
        "asr_sessions_total",
        "asr_active_sessions",
        "asr_errors_total",
        "nvidia_gpu_utilization",
    ):
        assert needed in joined, needed


def test_documented_and_dashboard_metrics_exist() -> None:
    """Every metric a query names is one the services export (or nginx's / Prometheus')."""
    exported = set()
    for registry in (GatewayMetrics().registry, WorkerMetrics().registry):
        for family in registry.collect():  # labelled families may have no samples yet
            suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}
            exported |= {family.name + s for s in ["", *suffixes.get(family.type, [])]}
    exported |= {
        "nvidia_gpu_utilization",
        "nvidia_gpu_memory_used_bytes",
        "nvidia_gpu_memory_total_bytes",
        "up",
    }
    queries = re.findall(r"```promql\n(.*?)```", OPERATIONS.read_text(), re.S)
    queries += [
        target["expr"]
        for panel in json.loads(DASHBOARD.read_text())["panels"]
        for target in panel["targets"]
    ]
    assert len(queries) > 15
    for query in queries:
        for name in re.findall(r"\b((?:asr|nvidia|nginx)_[a-z_]+|up)\b(?=[{\[)\s]|$)", query):
            if name.startswith("nginx_"):
                assert name in {"nginx_up", "nginx_connections_active", "nginx_http_requests_total"}
            else:
                assert name in exported, f"{name} in {query!r}"


def test_worker_image_is_cuda12_cudnn9_and_images_get_what_they_copy() -> None:
    worker = (ROOT / "deploy" / "worker.Dockerfile").read_text()
    (base,) = re.findall(r"^ARG CUDA_IMAGE=(\S+)$", worker, re.M)
    assert re.fullmatch(r"nvidia/cuda:12\.\d+\.\d+-cudnn9?-runtime-ubuntu\d+\.\d+", base), base
    assert 'pip install ".[worker]"' in worker
    for dockerfile in ("worker.Dockerfile", "gateway.Dockerfile"):
        text = (ROOT / "deploy" / dockerfile).read_text()
        ignore = (ROOT / "deploy" / f"{dockerfile}.dockerignore").read_text().splitlines()
        for source in re.findall(r"^COPY (?!--from=)(\S+) ", text, re.M):
            assert (ROOT / source).exists(), source
            allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
            assert source.rstrip("/") in allowed, f"{dockerfile}: {source} is ignored"
    gateway = (ROOT / "deploy" / "gateway.Dockerfile").read_text()
    assert "COPY asr" not in gateway and "ASR_VAD_MODEL_PATH=" in gateway
    assert MODEL_SHA256 in gateway  # the image's VAD file is the one the gateway accepts
    for name, svc in load(COMPOSE)["services"].items():
        build = svc.get("build")
        if build:
            assert (ROOT / build["context"] / build["dockerfile"]).is_file(), name


def test_cpu_override_drops_gpu_reservations(services) -> None:
    override = load(CPU_OVERRIDE)["services"]
    assert set(override) <= set(services)
    assert set(worker_services(services)) <= set(override)
    for name in worker_services(services):
        svc = override[name]
        assert isinstance(svc["deploy"]["resources"]["reservations"]["devices"], Reset), name
        assert svc["environment"]["ASR_WORKER_DEVICE"] == "cpu"
        assert svc["environment"]["ASR_WORKER_COMPUTE_TYPE"] == "int8"
        # the GPU batching default does not follow the workers onto CPUs (auto: off there)
        assert svc["environment"]["ASR_WORKER_BATCHING"] == "auto"
        assert svc["environment"]["ASR_WORKER_CONCURRENCY"] == "1"
    assert (
        "docker compose -f docker-compose.yml -f docker-compose.cpu.yml" in CPU_OVERRIDE.read_text()
    )


def test_compose_file_is_consistent_and_docker_compose_accepts_it(
    compose, services, tmp_path: Path
) -> None:
    """The YAML checks, then `docker-compose config` (Debian's Compose 1.29, which needs no
    engine; .ci/run installs it) on the file alone and with the CPU override. Compose 1.29 does
    not know v2's `!reset` tag: the override is checked with it written as an empty list
    (everything else in it checked as is); that `!reset` is what drops the GPU reservations is
    test_cpu_override_drops_gpu_reservations' job."""
    volumes = set(compose["volumes"])
    for name, svc in services.items():
        for dependency in svc.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown {dependency}"
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in volumes, f"{name} mounts undeclared volume {source}"
        assert "container_name" not in svc or "replicas" not in svc.get("deploy", {}), name
    compose_v1 = shutil.which("docker-compose")
    assert compose_v1, "docker-compose not found (Debian: apt-get install docker-compose)"
    override = tmp_path / "docker-compose.cpu.yml"
    override.write_text(CPU_OVERRIDE.read_text().replace("!reset []", "[]"))
    assert "!reset" not in override.read_text().split("x-cpu-worker")[1]
    for files in ([COMPOSE], [COMPOSE, override], [COMPOSE, REFERENCE]):
        args = [arg for f in files for arg in ("-f", str(f))]
        result = subprocess.run(
            [compose_v1, "--project-directory", str(ROOT), *args, "config", "--quiet"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr


def test_fetch_model_has_nothing_to_do_for_the_embedded_model(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "deploy/fetch_model.py"],
        cwd=ROOT,
        env={"ASR_WORKER_MODEL": "embedded", "ASR_WORKER_MODELS_DIR": str(tmp_path), "PATH": ""},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "needs no download" in result.stdout
