"""The Kubernetes manifests (deploy/k8s) in tests: render an overlay with `kubectl kustomize`,
find objects in it, and the local stand-ins the integration tests start in place of a cluster
(dnsmasq for the cluster's DNS, an NGINX configured like the Ingress, Prometheus scraping as
the PodMonitors say)."""

from __future__ import annotations

import functools
import grp
import importlib.util
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from launcher.processes import ManagedProcess, free_port

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ("cpu", "gpu")
RERESOLVE = K8S / "base" / "nginx" / "reresolve.py"
NGINX_CONF = K8S / "base" / "nginx" / "nginx.conf"
NAMESPACE = "realtime-asr"
WORKER_SERVICE = "asr-worker-pool"  # the headless Service NGINX follows
# what a pod of the namespace has in /etc/resolv.conf (kubelet, ClusterFirst)
POD_RESOLV_CONF = (
    f"search {NAMESPACE}.svc.cluster.local svc.cluster.local cluster.local\n"
    "nameserver 10.96.0.10\n"
    "options ndots:5\n"
)
INGRESS = "nginx.ingress.kubernetes.io/"


def kubectl() -> str:
    found = shutil.which("kubectl")
    assert found, "kubectl not found (v1.32 with kustomize built in is installed on these machines)"
    return found


@functools.cache
def _render(path: str) -> str:
    result = subprocess.run(
        [kubectl(), "kustomize", path], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, f"kubectl kustomize {path}:\n{result.stderr}"
    return result.stdout


def render_text(overlay: str) -> str:
    """`kubectl kustomize deploy/k8s/overlays/<overlay>` (or `base`)."""
    path = K8S / "base" if overlay == "base" else K8S / "overlays" / overlay
    return _render(str(path))


def render(overlay: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(render_text(overlay)) if doc]


def find(objects: Iterable[dict[str, Any]], kind: str, name: str | None = None) -> list[dict]:
    return [
        o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)
    ]


def one(objects: Iterable[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (found,) = find(objects, kind, name)
    return found


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    return workload["spec"]["template"]["spec"]


def container(workload: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [c for c in pod_spec(workload)["containers"] if c["name"] == name]
    return found


def env_of(item: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in item.get("env", []) if "value" in e}


def load_reresolve() -> ModuleType:
    """deploy/k8s/base/nginx/reresolve.py as a module (it ships in a ConfigMap, not a package)."""
    spec = importlib.util.spec_from_file_location("reresolve", RERESOLVE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["reresolve"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def wait_until(check: Callable[[], Any], timeout: float, what: str, every: float = 0.1) -> Any:
    """Poll `check` until it returns something true; its last value, or AssertionError."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"not within {timeout:.0f} s: {what}"
        time.sleep(every)


def binary(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin")
    assert found, f"{name} missing (Debian package; .ci/run installs it)"
    return found


# ---- the cluster's DNS, on loopback --------------------------------------------------------


class DnsServer(ManagedProcess):
    """Debian's dnsmasq on 127.0.0.1:<free port>, answering only from a hosts file it re-reads
    on SIGHUP. Like CoreDNS for a headless Service: names under cluster.local it does not hold
    are NXDOMAIN (`--local`), and so are single-label names (`--domain-needed`)."""

    def __init__(self, workdir: Path, log_dir: Path, name: str = "dnsmasq") -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.hosts = workdir / "hosts"
        self.hosts.write_text("")
        self.port = free_port()
        user = pwd.getpwuid(os.getuid()).pw_name
        group = grp.getgrgid(os.getgid()).gr_name
        super().__init__(
            name,
            [
                binary("dnsmasq"),
                "--keep-in-foreground",
                "--log-facility=-",
                "--no-resolv",
                "--no-hosts",
                f"--addn-hosts={self.hosts}",
                "--domain-needed",
                "--local=/cluster.local/",
                "--listen-address=127.0.0.1",
                "--bind-interfaces",
                f"--port={self.port}",
                "--pid-file=",
                f"--user={user}",  # stay who we are (root on CI): it must read the hosts file
                f"--group={group}",
            ],
            None,
            log_dir=log_dir,
        )
        self.server = f"127.0.0.1:{self.port}"
        self._names: set[str] = set()

    def wait_ready(self, timeout: float = 10.0) -> DnsServer:
        """Until it answers (before that a SIGHUP would kill it)."""
        reresolve = load_reresolve()

        def answers() -> bool:
            assert self.alive, f"dnsmasq exited:\n{self.tail()}"
            try:
                rcode, _ = reresolve.query_a(("127.0.0.1", self.port), "probe.cluster.local", 0.5)
            except (OSError, reresolve.DnsError):
                return False
            return rcode == reresolve.RCODE_NXDOMAIN

        wait_until(answers, timeout, "dnsmasq answers")
        return self

    def set(self, records: dict[str, Sequence[str]]) -> None:
        """Replace every record ({name: [IPv4, ...]}) and wait until dnsmasq answers with them
        (it re-reads the file on SIGHUP); names no longer listed answer NXDOMAIN."""
        lines = [
            f"{address} {name}" for name, addresses in records.items() for address in addresses
        ]
        self.hosts.write_text("".join(f"{line}\n" for line in lines))
        assert self.proc is not None
        self.proc.send_signal(signal.SIGHUP)
        reresolve = load_reresolve()
        expected = {name: sorted(addresses) for name, addresses in records.items()}
        expected |= {name: [] for name in self._names - set(records)}
        self._names |= set(records)

        def answered() -> bool:
            for name, addresses in expected.items():
                try:
                    _, found = reresolve.query_a(("127.0.0.1", self.port), name, 0.5)
                except (OSError, reresolve.DnsError):
                    return False
                if sorted(found) != addresses:
                    return False
            return True

        wait_until(answered, 10, f"dnsmasq answers {expected}")


# ---- an NGINX configured as the Ingress says ------------------------------------------------


def ingress_nginx_config(
    ingress: dict[str, Any], servers: Sequence[str], listen: int, prefix: Path
) -> str:
    """What ingress-nginx makes of the Ingress's annotations, in front of `servers` (gateways):
    WebSocket upgrade, the timeouts, the body limit, no request buffering, the retry on the next
    pod. A stand-in for the controller on loopback, not a copy of its whole template."""
    notes = ingress["metadata"]["annotations"]
    for sub in ("logs", "temp"):
        (prefix / sub).mkdir(parents=True, exist_ok=True)
    upstream = "\n".join(f"        server {server};" for server in servers)
    temp = "\n".join(
        f"    {kind}_temp_path {prefix}/temp/{kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log warn;
events {{
    worker_connections 1024;
}}
http {{
    access_log {prefix}/logs/access.log;
{temp}
    map $http_upgrade $connection_upgrade {{
        default upgrade;
        '' close;
    }}
    upstream gateways {{
{upstream}
    }}
    server {{
        listen 127.0.0.1:{listen};
        client_max_body_size {notes[INGRESS + "proxy-body-size"]};
        proxy_connect_timeout {notes[INGRESS + "proxy-connect-timeout"]}s;
        proxy_read_timeout {notes[INGRESS + "proxy-read-timeout"]}s;
        proxy_send_timeout {notes[INGRESS + "proxy-send-timeout"]}s;
        proxy_request_buffering {notes[INGRESS + "proxy-request-buffering"]};
        proxy_next_upstream {notes[INGRESS + "proxy-next-upstream"]};
        proxy_next_upstream_tries {notes[INGRESS + "proxy-next-upstream-tries"]};
        add_header X-Upstream $upstream_addr always;
        location / {{
            proxy_pass http://gateways;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $host;
            proxy_buffering off;
        }}
    }}
}}
"""


# ---- Prometheus scraping as the PodMonitors say --------------------------------------------


def podmonitor_labels(podmonitor: dict[str, Any], pod: str, node: str) -> dict[str, str]:
    """The labels a PodMonitor's targets get: the Operator's (namespace, pod, job) and those
    its relabelings set (constants, or the pod's node)."""
    meta = {"__meta_kubernetes_pod_node_name": node, "__meta_kubernetes_pod_name": pod}
    labels = {
        "namespace": podmonitor["metadata"]["namespace"],
        "pod": pod,
        "job": f"{podmonitor['metadata']['namespace']}/{podmonitor['metadata']['name']}",
    }
    for endpoint in podmonitor["spec"]["podMetricsEndpoints"]:
        for rule in endpoint.get("relabelings", []):
            assert rule.get("action", "replace") == "replace", rule
            sources = rule.get("sourceLabels")
            if sources:
                labels[rule["targetLabel"]] = ";".join(meta[s] for s in sources)
            else:
                labels[rule["targetLabel"]] = rule["replacement"]
    return labels


def prometheus_config(podmonitors: Sequence[dict[str, Any]], targets: dict[str, str]) -> dict:
    """A prometheus.yml with one job per PodMonitor whose pods run here: `targets` maps the
    PodMonitor's name to host:port. Scraped every second."""
    jobs = []
    for podmonitor in podmonitors:
        name = podmonitor["metadata"]["name"]
        if name not in targets:
            continue
        labels = podmonitor_labels(podmonitor, f"{name}-0", "local-node")
        job = labels.pop("job")
        (endpoint,) = podmonitor["spec"]["podMetricsEndpoints"]
        jobs.append(
            {
                "job_name": job,
                "metrics_path": endpoint.get("path", "/metrics"),
                "static_configs": [{"targets": [targets[name]], "labels": labels}],
            }
        )
    return {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": jobs,
    }


METRIC = re.compile(r"\b(asr_[a-z_]+|nvidia_[a-z_]+)\b")


def metric_names(query: str) -> set[str]:
    return set(METRIC.findall(query))
