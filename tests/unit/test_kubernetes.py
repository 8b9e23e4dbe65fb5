"""Static checks of the Kubernetes manifests (deploy/k8s), without a cluster.

Every overlay renders with `kubectl kustomize` (v1.32, kustomize built in) and validates with
`kubernetes-validate --strict -k 1.32.0`. The custom resources (KEDA's ScaledObject, the
Prometheus Operator's PodMonitor) have no schema there: the validator warns and passes them, so
this file lists them and checks their fields itself. Then what the rendered objects promise:
probes, resources, non-root, grace periods longer than the drain, GPUs only in the GPU overlay,
autoscaler metrics the services really export, the Ingress's limits, the NGINX configuration
rendered from the one template, and the DNS re-resolution sidecar's pure parts.
"""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from api.config import GatewaySettings
from api.metrics import GatewayMetrics
from asr.embedded_model import DEFAULT_MODEL_DIR
from asr.metrics import WorkerMetrics
from launcher.nginx_config import CONTAINER_LAYOUT, render
from tests.k8s_utils import (
    INGRESS,
    K8S,
    NAMESPACE,
    NGINX_CONF,
    OVERLAYS,
    POD_RESOLV_CONF,
    ROOT,
    WORKER_SERVICE,
    container,
    env_of,
    find,
    load_reresolve,
    metric_names,
    one,
    pod_spec,
    render_text,
)
from tests.k8s_utils import render as kustomize

K8S_VERSION = "1.32.0"
# the fields KEDA 2.x (keda.sh/v1alpha1) defines, of a ScaledObject's spec and of a prometheus
# trigger's metadata (keda.sh/docs: reference/scaledobject-spec, scalers/prometheus)
SCALED_OBJECT_FIELDS = {
    "scaleTargetRef", "pollingInterval", "cooldownPeriod", "initialCooldownPeriod",
    "idleReplicaCount", "minReplicaCount", "maxReplicaCount", "fallback", "advanced", "triggers",
}  # fmt: skip
PROMETHEUS_TRIGGER_FIELDS = {
    "serverAddress", "query", "threshold", "activationThreshold", "namespace",
    "ignoreNullValues", "unsafeSsl", "queryParameters", "customHeaders", "timeout",
}  # fmt: skip
# kinds the validator has no schema for, and who defines them
CUSTOM = {("ScaledObject", "keda.sh/v1alpha1"), ("PodMonitor", "monitoring.coreos.com/v1")}
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "asr.json"
# how deploy/k8s/base/nginx/nginx.conf is made from nginx/nginx.conf
NGINX_RENDER = (
    f"python -m launcher.nginx_config --server={WORKER_SERVICE}:8001 --listen=8080"
    f" --status-listen=8081 --output={NGINX_CONF.relative_to(ROOT)}"
)
UVICORN_GATEWAY_EXTRA_SEC = 5  # api/__main__.py: timeout_graceful_shutdown = drain + 5


@pytest.fixture(scope="module", params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def objects(overlay: str) -> list[dict[str, Any]]:
    return kustomize(overlay)


def deployments(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in find(objects, "Deployment")}


def workloads(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return find(objects, "Deployment") + find(objects, "Job")


def all_containers(workload: dict[str, Any]) -> list[dict[str, Any]]:
    spec = pod_spec(workload)
    return spec.get("initContainers", []) + spec["containers"]


def prestop_sleep(item: dict[str, Any]) -> int:
    """Seconds a preStop hook sleeps before anything else (`sleep N` first in its command)."""
    command = " ".join(item["lifecycle"]["preStop"]["exec"]["command"])
    match = re.search(r"\bsleep (\d+)", command)
    assert match, command
    return int(match.group(1))


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    assert set(selector) <= {"matchLabels"}, selector
    return selector.get("matchLabels", {}).items() <= labels.items()


def pods_of(objects: list[dict[str, Any]], selector: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        w
        for w in workloads(objects)
        if selects(selector, w["spec"]["template"]["metadata"]["labels"])
    ]


def exported_names() -> tuple[set[str], set[str]]:
    """Sample names (with _total, _bucket, ...) each service's registry exports."""

    def names(registry: Any) -> set[str]:
        out: set[str] = set()
        for family in registry.collect():  # labelled families may have no sample yet
            suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}
            out |= {family.name + s for s in ["", *suffixes.get(family.type, [])]}
        return out

    return names(GatewayMetrics().registry), names(WorkerMetrics().registry)


def nginx_size(value: str) -> int:
    units = {"k": 1024, "m": 1024**2, "g": 1024**3}
    return int(value[:-1]) * units[value[-1].lower()] if value[-1].isalpha() else int(value)


# ---- rendering and schemas -----------------------------------------------------------------


@pytest.mark.parametrize("target", [*OVERLAYS, "base"])
def test_renders_and_validates_against_kubernetes_1_32(target: str, tmp_path: Path) -> None:
    rendered = tmp_path / f"{target}.yaml"
    rendered.write_text(render_text(target))
    result = subprocess.run(
        [sys.executable, "-m", "kubernetes_validate", "--strict", "-k", K8S_VERSION, str(rendered)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    lines = result.stdout.splitlines()
    problems = [line for line in lines if not line.startswith("INFO")]
    assert result.returncode == 0, "\n".join(problems) + result.stderr
    unchecked = {
        (m[1], m[2])
        for line in lines
        if (m := re.search(r"Couldn't find schema for kind (\S+) with api version (\S+)", line))
    }
    # exactly the custom resources are skipped (a typo in a core kind would be skipped too)
    docs = kustomize(target)
    expected = {(d["kind"], d["apiVersion"]) for d in docs} & CUSTOM
    assert unchecked == expected, lines
    passed = [line for line in lines if " passed for resource " in line]
    assert len(passed) == len([d for d in docs if (d["kind"], d["apiVersion"]) not in CUSTOM])


def test_every_object_is_in_the_namespace_and_names_are_unique(objects) -> None:
    seen = set()
    for obj in objects:
        key = (obj["kind"], obj["metadata"]["name"])
        assert key not in seen, key
        seen.add(key)
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == NAMESPACE, key
    namespace = one(objects, "Namespace", NAMESPACE)
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_custom_resources_are_checked_here(objects) -> None:
    """No schema for these in kubernetes-validate: their fields, as KEDA and the Operator
    define them, and what they point at."""
    import kubernetes_validate

    scaled = find(objects, "ScaledObject")
    assert {s["metadata"]["name"] for s in scaled} == {"asr-gateway", "asr-worker"}
    for obj in scaled:
        spec = obj["spec"]
        assert obj["apiVersion"] == "keda.sh/v1alpha1"
        assert set(spec) <= SCALED_OBJECT_FIELDS, spec
        target = spec["scaleTargetRef"]
        assert set(target) <= {"name", "kind", "apiVersion", "envSourceContainerName"}
        assert target.get("kind", "Deployment") == "Deployment"
        deployment = one(objects, "Deployment", target["name"])
        assert "replicas" not in deployment["spec"], "the ScaledObject owns the replica count"
        assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
        assert isinstance(spec["pollingInterval"], int) and spec["pollingInterval"] > 0
        assert set(spec["advanced"]) <= {
            "horizontalPodAutoscalerConfig",
            "restoreToOriginalReplicaCount",
            "scalingModifiers",
        }
        # the HPA KEDA makes: its behaviour and bounds through the real HPA schema
        hpa = {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": f"keda-hpa-{obj['metadata']['name']}"},
            "spec": {
                "scaleTargetRef": {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "name": target["name"],
                },
                "minReplicas": spec["minReplicaCount"],
                "maxReplicas": spec["maxReplicaCount"],
                "behavior": spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"],
                "metrics": [],
            },
        }
        assert set(spec["advanced"]["horizontalPodAutoscalerConfig"]) <= {"behavior", "name"}
        kubernetes_validate.validate(hpa, K8S_VERSION, strict=True)
        assert spec["triggers"]
        for trigger in spec["triggers"]:
            assert set(trigger) <= {
                "type",
                "metadata",
                "metricType",
                "name",
                "useCachedMetrics",
                "authenticationRef",
            }
            assert trigger["type"] == "prometheus"
            assert trigger["metricType"] in ("AverageValue", "Value")
            meta = trigger["metadata"]
            assert set(meta) <= PROMETHEUS_TRIGGER_FIELDS, meta
            assert all(isinstance(v, str) for v in meta.values()), "KEDA metadata are strings"
            assert re.fullmatch(r"https?://[a-z0-9.-]+(:\d+)?", meta["serverAddress"])
            assert float(meta["threshold"]) > 0
            assert meta["ignoreNullValues"] in ("true", "false")
            assert meta["query"].count("(") == meta["query"].count(")")
    podmonitors = find(objects, "PodMonitor")
    assert {p["metadata"]["name"] for p in podmonitors} == set(deployments(objects))
    for obj in podmonitors:
        assert obj["apiVersion"] == "monitoring.coreos.com/v1"
        spec = obj["spec"]
        assert set(spec) <= {
            "selector",
            "podMetricsEndpoints",
            "namespaceSelector",
            "jobLabel",
            "podTargetLabels",
        }
        (workload,) = pods_of(objects, spec["selector"])
        ports = {p["name"] for c in pod_spec(workload)["containers"] for p in c.get("ports", [])}
        for endpoint in spec["podMetricsEndpoints"]:
            assert set(endpoint) <= {
                "port",
                "path",
                "interval",
                "scrapeTimeout",
                "relabelings",
                "metricRelabelings",
                "honorLabels",
            }
            assert endpoint["port"] in ports, (obj["metadata"]["name"], endpoint["port"])
            assert endpoint["path"] == "/metrics"
            assert re.fullmatch(r"\d+s", endpoint["interval"])
            for rule in endpoint["relabelings"]:
                assert set(rule) <= {
                    "action",
                    "sourceLabels",
                    "targetLabel",
                    "replacement",
                    "regex",
                    "separator",
                }
                assert rule["action"] == "replace"
                assert re.fullmatch(r"[a-z_]+", rule["targetLabel"])
                assert "sourceLabels" in rule or "replacement" in rule


# ---- pods ----------------------------------------------------------------------------------


def test_probes_on_ready_and_health(objects) -> None:
    deploy = deployments(objects)
    for name, main in (("asr-gateway", "gateway"), ("asr-worker", "worker")):
        item = container(deploy[name], main)
        assert item["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}, name
        assert item["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}, name
        ports = {p["name"]: p["containerPort"] for p in item["ports"]}
        assert ports == {"http": {"asr-gateway": 8000, "asr-worker": 8001}[name]}
    nginx = container(deploy["asr-nginx"], "nginx")
    for probe in ("readinessProbe", "livenessProbe"):
        assert nginx[probe]["httpGet"] == {"path": "/stub_status", "port": "status"}
    assert "location = /stub_status {" in NGINX_CONF.read_text()


def test_every_container_has_resources(objects) -> None:
    for workload in workloads(objects):
        for item in all_containers(workload):
            resources = item["resources"]
            where = f"{workload['metadata']['name']}/{item['name']}"
            assert {"cpu", "memory"} <= set(resources["requests"]), where
            assert "memory" in resources["limits"], where


def test_gateway_resources_follow_the_measured_cost(objects) -> None:
    """~100 real-time sessions per process at 1.15 cores (docs/benchmarks.md): the autoscaler
    aims below that, the hard limit stays below the 300 that overload a process, and the CPU
    request covers the target's share."""
    gateway = container(deployments(objects)["asr-gateway"], "gateway")
    target = float(
        one(objects, "ScaledObject", "asr-gateway")["spec"]["triggers"][0]["metadata"]["threshold"]
    )
    limit = int(env_of(gateway)["ASR_MAX_SESSIONS"])
    assert target < 100 < limit < 300
    cpu = gateway["resources"]["requests"]["cpu"]
    cores = float(cpu[:-1]) / 1000 if cpu.endswith("m") else float(cpu)
    assert cores >= target * 0.0115 * 0.5, "less than half the measured cost of its sessions"


def test_non_root_read_only_no_escalation_capabilities_dropped(objects) -> None:
    for workload in workloads(objects):
        name = workload["metadata"]["name"]
        spec = pod_spec(workload)
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True and pod["runAsUser"] > 0, name
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert spec["automountServiceAccountToken"] is False, name
        assert not spec.get("hostNetwork") and not spec.get("hostPID"), name
        for item in all_containers(workload):
            context = item["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, (name, item["name"])
            assert context["readOnlyRootFilesystem"] is True, (name, item["name"])
            assert context.get("privileged", False) is False, (name, item["name"])
            assert context["capabilities"]["drop"] == ["ALL"], (name, item["name"])
            assert "add" not in context["capabilities"], (name, item["name"])
            assert "runAsUser" not in context or context["runAsUser"] > 0
        for volume in spec["volumes"]:
            sources = set(volume) - {"name"}
            assert len(sources) == 1, volume  # exactly one source (the GPU patch replaced one)
            assert sources <= {"emptyDir", "configMap", "secret", "persistentVolumeClaim"}, volume


def test_writable_paths_are_volumes(objects) -> None:
    """With a read-only root, what each process writes goes to a volume: /tmp for both
    services, /models for the model's init container, NGINX's pid, config and temp files."""
    deploy = deployments(objects)
    for name, main in (("asr-gateway", "gateway"), ("asr-worker", "worker")):
        mounts = {m["mountPath"]: m for m in container(deploy[name], main)["volumeMounts"]}
        assert "/tmp" in mounts, name
    worker = container(deploy["asr-worker"], "worker")
    models = {m["mountPath"]: m for m in worker["volumeMounts"]}["/models"]
    assert models["readOnly"] is True  # filled before the worker starts, only read by it
    assert env_of(worker)["HOME"] == "/tmp"
    nginx = container(deploy["asr-nginx"], "nginx")
    mounts = {m["mountPath"] for m in nginx["volumeMounts"]}
    assert {"/tmp", CONTAINER_LAYOUT.temp_dir} <= mounts
    assert CONTAINER_LAYOUT.pid_path.startswith("/tmp/")
    assert nginx["command"][:3] == ["nginx", "-c", "/tmp/nginx.conf"]


def test_grace_periods_outlast_prestop_and_drain(objects) -> None:
    deploy = deployments(objects)
    gateway_pod = pod_spec(deploy["asr-gateway"])
    gateway = container(deploy["asr-gateway"], "gateway")
    drain = float(
        env_of(gateway).get("ASR_SHUTDOWN_TIMEOUT_SEC", GatewaySettings().shutdown_timeout_sec)
    )
    assert drain == GatewaySettings().shutdown_timeout_sec  # as documented
    needed = prestop_sleep(gateway) + drain + UVICORN_GATEWAY_EXTRA_SEC
    assert gateway_pod["terminationGracePeriodSeconds"] > needed
    main_src = (ROOT / "api" / "__main__.py").read_text()
    assert "timeout_graceful_shutdown=int(settings.shutdown_timeout_sec) + 5" in main_src
    worker_src = (ROOT / "asr" / "__main__.py").read_text()
    (finish,) = re.findall(r"timeout_graceful_shutdown=(\d+)", worker_src)
    worker = container(deploy["asr-worker"], "worker")
    assert pod_spec(deploy["asr-worker"])["terminationGracePeriodSeconds"] > prestop_sleep(
        worker
    ) + int(finish)
    nginx = container(deploy["asr-nginx"], "nginx")
    read_timeout = int(re.search(r"proxy_read_timeout (\d+)s;", NGINX_CONF.read_text())[1])
    assert (
        pod_spec(deploy["asr-nginx"])["terminationGracePeriodSeconds"]
        > prestop_sleep(nginx) + read_timeout
    )
    assert "-s quit" in " ".join(nginx["lifecycle"]["preStop"]["exec"]["command"])
    # the worker leaves NGINX before it stops: DNS TTL (CoreDNS: 5 s) + the sidecar's interval
    interval = float(option(container(deploy["asr-nginx"], "reresolve")["command"], "interval"))
    assert prestop_sleep(worker) >= 5 + interval + 2


def option(argv: list[str], name: str) -> str:
    (value,) = [a.split("=", 1)[1] for a in argv if a.startswith(f"--{name}=")]
    return value


def test_rolling_updates_keep_capacity(objects, overlay) -> None:
    deploy = deployments(objects)
    assert deploy["asr-gateway"]["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert deploy["asr-nginx"]["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    worker = deploy["asr-worker"]["spec"]["strategy"]["rollingUpdate"]
    # no spare GPU to surge onto: replace in place
    assert worker == (
        {"maxSurge": 0, "maxUnavailable": 1}
        if overlay == "gpu"
        else {"maxSurge": 1, "maxUnavailable": 0}
    )
    for name in deploy:
        (pdb,) = [p for p in find(objects, "PodDisruptionBudget") if p["metadata"]["name"] == name]
        assert pdb["spec"]["maxUnavailable"] == 1
        assert pods_of(objects, pdb["spec"]["selector"]) == [deploy[name]]


# ---- GPUs, models ----------------------------------------------------------------------------


def gpu_requests(workload: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for item in all_containers(workload):
        for kind in ("requests", "limits"):
            value = item["resources"].get(kind, {}).get("nvidia.com/gpu")
            if value is not None:
                out[f"{item['name']}.{kind}"] = value
    return out


def test_gpus_are_requested_in_the_gpu_overlay_only(objects, overlay) -> None:
    for workload in workloads(objects):
        found = gpu_requests(workload)
        if overlay == "gpu" and workload["metadata"]["name"] == "asr-worker":
            assert found == {"worker.requests": 1, "worker.limits": 1}  # one GPU per worker
            spec = pod_spec(workload)
            assert spec["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
            assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec[
                "tolerations"
            ]
        else:
            assert found == {}, workload["metadata"]["name"]
    assert ("nvidia.com/gpu" in render_text(overlay)) == (overlay == "gpu")


def test_workers_model_device_and_cache(objects, overlay) -> None:
    worker_deploy = deployments(objects)["asr-worker"]
    worker = container(worker_deploy, "worker")
    env = env_of(worker)
    models_dir = env["ASR_WORKER_MODELS_DIR"]
    assert env["HF_HUB_OFFLINE"] == "1" and env["ASR_WORKER_HOST"] == "0.0.0.0"
    requested = worker["resources"]["requests"]["cpu"]
    assert env["ASR_WORKER_CPU_THREADS"] == requested, "threads = the CPU request"
    (init,) = pod_spec(worker_deploy)["initContainers"]
    init_mounts = {m["mountPath"]: m for m in init["volumeMounts"]}
    if overlay == "cpu":
        assert (env["ASR_WORKER_MODEL"], env["ASR_WORKER_DEVICE"]) == ("embedded", "cpu")
        assert env["ASR_WORKER_COMPUTE_TYPE"] == "int8"
        # the directory the worker's settings look in (models_dir / whisper-base)
        assert init["command"] == [
            "python",
            "-m",
            "asr.embedded_model",
            f"{models_dir}/{DEFAULT_MODEL_DIR.name}",
        ]
        assert init_mounts[models_dir].get("readOnly") is not True
        assert init["image"] == worker["image"]
        assert find(objects, "Job") == [] and find(objects, "PersistentVolumeClaim") == []
        return
    assert (env["ASR_WORKER_MODEL"], env["ASR_WORKER_DEVICE"]) == ("medium", "cuda")
    assert env["ASR_WORKER_COMPUTE_TYPE"] == "int8_float16"
    assert env["ASR_WORKER_BATCHING"] == "on" and env["ASR_WORKER_DEVICE_INDEX"] == "0"
    assert "ASR_WORKER_GPU_LABEL" not in env  # nvidia_gpu_*{gpu} = the GPU's UUID
    (volume,) = [v for v in pod_spec(worker_deploy)["volumes"] if v["name"] == "models"]
    claim = volume["persistentVolumeClaim"]["claimName"]
    pvc = one(objects, "PersistentVolumeClaim", claim)
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]  # workers on every node
    job = one(objects, "Job", "asr-model-fetch")
    fetch = container(job, "fetch")
    fetch_env = env_of(fetch)
    assert fetch["image"] == worker["image"] == init["image"]
    assert "python deploy/fetch_model.py" in fetch["command"][-1]
    assert (ROOT / "deploy" / "fetch_model.py").is_file()
    assert (
        fetch_env["ASR_WORKER_MODEL"] == env["ASR_WORKER_MODEL"] == env_of(init)["ASR_WORKER_MODEL"]
    )
    assert fetch_env["ASR_WORKER_MODELS_DIR"] == models_dir == env_of(init)["ASR_WORKER_MODELS_DIR"]
    (job_volume,) = [v for v in pod_spec(job)["volumes"] if v["name"] == "models"]
    assert job_volume["persistentVolumeClaim"]["claimName"] == claim
    # the Job marks the cache complete; the workers' init container waits for that mark
    mark = '"$ASR_WORKER_MODELS_DIR/.complete-$ASR_WORKER_MODEL"'
    assert f"touch {mark}" in fetch["command"][-1]
    assert f"until [ -f {mark} ]" in init["command"][-1]


# ---- services, networking, the Ingress ---------------------------------------------------------


def test_services_select_their_pods_by_named_ports(objects) -> None:
    for service in find(objects, "Service"):
        (workload,) = pods_of(objects, {"matchLabels": service["spec"]["selector"]})
        names = {p["name"] for c in pod_spec(workload)["containers"] for p in c.get("ports", [])}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in names, (service["metadata"]["name"], port)
    assert one(objects, "Service", WORKER_SERVICE)["spec"]["clusterIP"] == "None"  # headless


def test_gateway_reaches_the_workers_through_nginx(objects) -> None:
    gateway = env_of(container(deployments(objects)["asr-gateway"], "gateway"))
    nginx = one(objects, "Service", "asr-nginx")
    (port,) = nginx["spec"]["ports"]
    assert gateway["ASR_UPSTREAM_URL"] == f"http://asr-nginx:{port['port']}"
    assert f"listen {port['port']};" in NGINX_CONF.read_text()
    assert float(gateway["ASR_REQUEST_TIMEOUT_SEC"]) > 60 + 10  # NGINX read timeout + retries
    pool = one(objects, "Service", WORKER_SERVICE)
    (pool_port,) = pool["spec"]["ports"]
    assert f"server {WORKER_SERVICE}:{pool_port['port']} " in NGINX_CONF.read_text()


def test_api_keys_come_from_a_secret(objects) -> None:
    deploy = deployments(objects)["asr-gateway"]
    gateway = container(deploy, "gateway")
    env = env_of(gateway)
    assert env["ASR_AUTH_REQUIRED"] == "true" and "ASR_API_KEYS" not in env
    keys = Path(env["ASR_API_KEYS_FILE"])
    (mount,) = [m for m in gateway["volumeMounts"] if m["mountPath"] == str(keys.parent)]
    (volume,) = [v for v in pod_spec(deploy)["volumes"] if v["name"] == mount["name"]]
    assert volume["secret"]["secretName"] == "asr-api-keys" and mount["readOnly"] is True
    assert find(objects, "Secret") == []  # never committed: the operator creates it
    assert "api-keys" not in env.get("ASR_API_KEYS", "")


def test_ingress_timeouts_outlast_idle_sessions_and_body_equals_file_limit(
    objects, overlay
) -> None:
    ingress = one(objects, "Ingress", "asr-gateway")
    notes = ingress["metadata"]["annotations"]
    gateway = env_of(container(deployments(objects)["asr-gateway"], "gateway"))
    defaults = GatewaySettings()
    idle = float(gateway.get("ASR_IDLE_TIMEOUT_SEC", defaults.idle_timeout_sec))
    assert idle == defaults.idle_timeout_sec
    for name in ("proxy-read-timeout", "proxy-send-timeout"):
        assert float(notes[INGRESS + name]) > idle, name
    limit = int(gateway.get("ASR_FILE_MAX_BYTES", defaults.file_max_bytes))
    assert limit == defaults.file_max_bytes
    assert nginx_size(notes[INGRESS + "proxy-body-size"]) == limit
    assert notes[INGRESS + "proxy-request-buffering"] == "off"
    (rule,) = ingress["spec"]["rules"]
    (path,) = rule["http"]["paths"]
    assert path["path"] == "/" and path["pathType"] == "Prefix"  # /ws/transcribe, /v1, the page
    assert path["backend"]["service"] == {"name": "asr-gateway", "port": {"name": "http"}}
    scheme = "https" if ingress["spec"].get("tls") else "http"
    assert gateway["ASR_ALLOWED_ORIGINS"] == f"{scheme}://{rule['host']}"
    assert (overlay == "cpu") == (scheme == "http")
    metrics = one(objects, "Ingress", "asr-gateway-metrics")
    (metrics_rule,) = metrics["spec"]["rules"]
    assert metrics_rule["host"] == rule["host"]
    assert metrics_rule["http"]["paths"][0]["path"] == "/metrics"
    assert metrics["metadata"]["annotations"][INGRESS + "denylist-source-range"] == "0.0.0.0/0,::/0"


def allowed_from(policies: list[dict[str, Any]], pod_labels: dict[str, str]) -> list[dict]:
    return [
        rule
        for policy in policies
        if "Ingress" in policy["spec"]["policyTypes"]
        and selects(policy["spec"]["podSelector"], pod_labels)
        for rule in policy["spec"].get("ingress", [])
    ]


def test_network_policies(objects) -> None:
    policies = find(objects, "NetworkPolicy")
    deny = one(objects, "NetworkPolicy", "default-deny-ingress")
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
    labels = {
        name: d["spec"]["template"]["metadata"]["labels"]
        for name, d in deployments(objects).items()
    }

    def sources(name: str) -> dict[str, set]:
        """Who may reach each port of a component's pods: {port: {source name}}."""
        out: dict[str, set] = {}
        for rule in allowed_from(policies, labels[name]):
            for peer in rule["from"]:
                if "namespaceSelector" in peer:
                    namespace = peer["namespaceSelector"]["matchLabels"][
                        "kubernetes.io/metadata.name"
                    ]
                    app = peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
                    who = f"{namespace}/{app}"
                else:
                    who = peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
                for port in rule["ports"]:
                    out.setdefault(str(port["port"]), set()).add(who)
        return out

    assert sources("asr-worker") == {"http": {"asr-nginx", "monitoring/prometheus"}}
    assert sources("asr-nginx") == {"http": {"asr-gateway"}, "metrics": {"monitoring/prometheus"}}
    assert sources("asr-gateway") == {
        "http": {"ingress-nginx/ingress-nginx", "monitoring/prometheus"}
    }
    worker_policy = one(objects, "NetworkPolicy", "asr-worker")
    egress_ports = {p["port"] for rule in worker_policy["spec"]["egress"] for p in rule["ports"]}
    assert "Egress" in worker_policy["spec"]["policyTypes"] and egress_ports == {53}  # DNS only
    nginx_policy = one(objects, "NetworkPolicy", "asr-nginx")
    egress_ports = {p["port"] for rule in nginx_policy["spec"]["egress"] for p in rule["ports"]}
    assert egress_ports == {8001, 53}


# ---- autoscaling and monitoring ----------------------------------------------------------------


def test_autoscalers_use_metrics_the_services_export(objects, overlay) -> None:
    gateway_names, worker_names = exported_names()
    exported = {"asr-gateway": gateway_names, "asr-worker": worker_names}
    for scaled in find(objects, "ScaledObject"):
        target = scaled["spec"]["scaleTargetRef"]["name"]
        for trigger in scaled["spec"]["triggers"]:
            query = trigger["metadata"]["query"]
            names = metric_names(query)
            assert names and names <= exported[target], (query, names - exported[target])
            # the namespace the objects are in, as the Operator labels every series
            assert re.findall(r'namespace="([^"]+)"', query) == [NAMESPACE] * len(names)
    gateway = one(objects, "ScaledObject", "asr-gateway")["spec"]["triggers"][0]
    assert metric_names(gateway["metadata"]["query"]) == {"asr_active_sessions"}
    assert gateway["metricType"] == "AverageValue"  # sessions *per pod*
    worker = one(objects, "ScaledObject", "asr-worker")["spec"]
    (trigger,) = worker["triggers"]
    assert metric_names(trigger["metadata"]["query"]) == {"asr_worker_in_flight"}
    threshold = float(trigger["metadata"]["threshold"])
    env = env_of(container(deployments(objects)["asr-worker"], "worker"))
    slots = int(env["ASR_WORKER_CONCURRENCY"]) * (
        int(env.get("ASR_WORKER_MAX_BATCH", 1)) if env.get("ASR_WORKER_BATCHING") == "on" else 1
    )
    # scale out before a worker's queue fills (requests beyond its slots wait, then get 503)
    assert 0 < threshold <= slots < slots + int(env["ASR_WORKER_QUEUE_LIMIT"])
    assert (worker["maxReplicaCount"], threshold) == ((8, 6.0) if overlay == "gpu" else (4, 1.0))


def test_podmonitors_label_like_prometheus_yml(objects) -> None:
    """The dashboard and docs/operations.md query job="asr-workers" and `service`; GPU series
    get `node` (their `gpu` label is the GPU's UUID here)."""
    from tests.k8s_utils import podmonitor_labels

    scrape_configs = yaml.safe_load((ROOT / "prometheus.yml").read_text())["scrape_configs"]
    jobs = {job["job_name"] for job in scrape_configs}
    for podmonitor in find(objects, "PodMonitor"):
        labels = podmonitor_labels(podmonitor, "p-0", "node-a")
        assert labels["job"] in jobs and labels["node"] == "node-a"
        assert "gpu" not in labels
        assert podmonitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    worker = podmonitor_labels(one(objects, "PodMonitor", "asr-worker"), "p-0", "node-a")
    assert worker["job"] == "asr-workers" and worker["service"] == "asr-worker"
    for workload in deployments(objects).values():
        notes = workload["spec"]["template"]["metadata"]["annotations"]
        assert notes["prometheus.io/scrape"] == "true" and notes["prometheus.io/path"] == "/metrics"
        ports = {
            p["containerPort"] for c in pod_spec(workload)["containers"] for p in c.get("ports", [])
        }
        assert int(notes["prometheus.io/port"]) in ports


def test_grafana_dashboard_configmap_is_the_dashboard(objects) -> None:
    dashboard = one(objects, "ConfigMap", "asr-grafana-dashboard")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(dashboard["data"]["asr.json"]) == json.loads(DASHBOARD.read_text())


# ---- NGINX and the re-resolution sidecar ---------------------------------------------------------


def test_nginx_conf_is_the_template_rendered_for_the_cluster() -> None:
    expected = render([f"{WORKER_SERVICE}:8001"], "8080", "8081", CONTAINER_LAYOUT)
    assert NGINX_CONF.read_text() == expected, (
        "deploy/k8s/base/nginx/nginx.conf is stale; from the repository root run: " + NGINX_RENDER
    )


def test_nginx_configmap_holds_the_config_and_the_sidecar(objects) -> None:
    (configmap,) = [
        c for c in find(objects, "ConfigMap") if c["metadata"]["name"].startswith("asr-nginx-")
    ]
    assert configmap["data"]["nginx.conf"] == NGINX_CONF.read_text()
    assert configmap["data"]["reresolve.py"] == (K8S / "base/nginx/reresolve.py").read_text()
    deploy = deployments(objects)["asr-nginx"]
    spec = pod_spec(deploy)
    assert spec["shareProcessNamespace"] is True  # the sidecar signals NGINX's master
    (config,) = [v for v in spec["volumes"] if v["name"] == "config"]
    assert config["configMap"]["name"] == configmap["metadata"]["name"]
    for item in [*spec["initContainers"], container(deploy, "reresolve")]:
        assert item["command"][:2] == ["python", "/etc/asr-nginx/reresolve.py"]
        assert option(item["command"], "template") == "/etc/asr-nginx/nginx.conf"
        assert option(item["command"], "output") == "/tmp/nginx.conf"
    assert "--once" in spec["initContainers"][0]["command"]
    sidecar = container(deploy, "reresolve")["command"]
    assert option(sidecar, "pid-file") == CONTAINER_LAYOUT.pid_path
    users = {spec["securityContext"]["runAsUser"]} | {
        c["securityContext"].get("runAsUser", spec["securityContext"]["runAsUser"])
        for c in all_containers(deploy)
    }
    assert len(users) == 1, "one user, or the sidecar may not signal NGINX"


def test_expanded_cluster_config_passes_nginx_t(tmp_path: Path) -> None:
    """What the sidecar writes (three workers; none ready yet: one `down` server), checked by
    the real NGINX, with the container's paths moved into tmp_path (nginx -t creates its temp
    directories)."""
    nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
    if nginx is None:
        pytest.skip("nginx missing (Debian: apt-get install nginx; .ci/run installs it)")
    reresolve = load_reresolve()
    (tmp_path / Path(CONTAINER_LAYOUT.temp_dir).name).mkdir()
    for addresses in (["10.1.0.7", "10.1.0.8", "10.1.3.2"], []):
        text = reresolve.expand(NGINX_CONF.read_text(), {WORKER_SERVICE: addresses})
        for path in (CONTAINER_LAYOUT.temp_dir, CONTAINER_LAYOUT.pid_path):
            text = text.replace(path, str(tmp_path / Path(path).name))
        conf = tmp_path / "nginx.conf"
        conf.write_text(text)
        result = subprocess.run(
            [nginx, "-t", "-q", "-p", f"{tmp_path}/", "-c", str(conf), "-e", str(tmp_path / "e")],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert result.returncode == 0, (addresses, result.stderr)


def test_reresolve_expands_each_named_server_per_address() -> None:
    reresolve = load_reresolve()
    template = NGINX_CONF.read_text()
    assert reresolve.upstream_hosts(template) == [WORKER_SERVICE]
    out = reresolve.expand(template, {WORKER_SERVICE: ["10.0.0.5", "10.0.0.6"]})
    servers = re.findall(r"^\s+server (\S+) (.*);$", out, re.M)
    assert servers == [
        ("10.0.0.5:8001", "max_fails=10 fail_timeout=5s"),
        ("10.0.0.6:8001", "max_fails=10 fail_timeout=5s"),
    ]
    # everything else is the template, line for line
    kept = [
        line
        for line in out.splitlines()
        if not re.match(r"^\s+(server \d|# asr-worker-pool:)", line)
    ]
    assert kept == [
        line for line in template.splitlines() if f"server {WORKER_SERVICE}:" not in line
    ]
    none = reresolve.expand(template, {})
    assert "server 127.0.0.1:8001 max_fails=10 fail_timeout=5s down;" in none
    assert reresolve.upstream_hosts(out) == []  # addresses are left alone
    literal = "upstream u {\n    server 10.1.1.1:80;\n    server {{ server }} x;\n}\n"
    assert reresolve.expand(literal, {}) == literal


def test_reresolve_follows_resolv_conf_like_a_pod() -> None:
    reresolve = load_reresolve()
    resolver = reresolve.Resolver.from_resolv_conf(POD_RESOLV_CONF)
    assert resolver.nameservers == [("10.96.0.10", 53)] and resolver.ndots == 5
    assert resolver.candidates(WORKER_SERVICE) == [
        f"{WORKER_SERVICE}.{NAMESPACE}.svc.cluster.local",
        f"{WORKER_SERVICE}.svc.cluster.local",
        f"{WORKER_SERVICE}.cluster.local",
        WORKER_SERVICE,
    ]
    assert resolver.candidates("a.b.c.d.e.f")[0] == "a.b.c.d.e.f"
    assert resolver.candidates("fqdn.example.") == ["fqdn.example."]
    override = reresolve.Resolver.from_resolv_conf(POD_RESOLV_CONF, [("127.0.0.1", 5353)])
    assert override.nameservers == [("127.0.0.1", 5353)] and override.search == resolver.search


def dns_reply(
    query_id: int, name: str, addresses: list[str], rcode: int = 0, flags: int = 0x8180
) -> bytes:
    """A reply as a server writes it: the question, then answers whose name is a compression
    pointer to it (0xC00C), plus a CNAME the parser must skip."""
    import socket

    qname = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    answers = [b"\xc0\x0c" + struct.pack("!HHIH", 5, 1, 30, 2) + b"\xc0\x0c"]  # CNAME, skipped
    answers += [
        b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 5, 4) + socket.inet_aton(a) for a in addresses
    ]
    header = struct.pack("!6H", query_id, flags | rcode, 1, len(answers), 0, 0)
    return header + qname + struct.pack("!HH", 1, 1) + b"".join(answers)


def test_reresolve_parses_dns_replies() -> None:
    reresolve = load_reresolve()
    name = f"{WORKER_SERVICE}.{NAMESPACE}.svc.cluster.local"
    query = reresolve.build_query(0x1234, name)
    assert query[:2] == b"\x12\x34" and query.endswith(b"\x00\x00\x29\x10\x00" + bytes(6))
    reply = dns_reply(0x1234, name, ["10.1.0.7", "10.1.0.8"])
    assert reresolve.parse_response(reply, 0x1234) == (0, False, ["10.1.0.7", "10.1.0.8"])
    assert reresolve.parse_response(dns_reply(7, name, [], rcode=3), 7) == (3, False, [])
    truncated = dns_reply(7, name, [], flags=0x8380)
    assert reresolve.parse_response(truncated, 7)[1] is True
    with pytest.raises(reresolve.DnsError):
        reresolve.parse_response(reply, 0x4321)  # someone else's reply
    with pytest.raises(reresolve.DnsError):
        reresolve.parse_response(reply[:-3], 0x1234)
