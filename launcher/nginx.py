"""NGINX started for real on loopback, in front of local workers: `make run WORKERS=N`, the
tests and the benchmark (the configuration is rendered by launcher/nginx_config.py)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from launcher.nginx_config import local_layout, render
from launcher.processes import REPO_ROOT, ManagedProcess, free_port

# NGINX in front of several gateways (WebSocket sessions), for local multi-gateway runs
GATEWAYS_TEMPLATE = REPO_ROOT / "nginx" / "gateways.conf"


def nginx_binary() -> str:
    """nginx lives in /usr/sbin on Debian, which is not on a normal user's PATH."""
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        raise FileNotFoundError("nginx not found (Debian: apt-get install nginx)")
    return found


def make_prefix() -> Path:
    """A fresh temporary NGINX prefix. World-traversable: when the master runs as root its
    worker processes run as `nobody` and must reach the temp directories inside."""
    prefix = Path(tempfile.mkdtemp(prefix="asr-nginx-"))
    prefix.chmod(0o755)
    return prefix


def write_local_config(
    prefix: Path,
    servers: Sequence[str],
    port: int,
    status_port: int,
    host: str = "127.0.0.1",
    template: Path | None = None,
) -> Path:
    """Render the template (default: nginx/nginx.conf, the workers' upstream) for a local run
    into prefix/conf/nginx.conf."""
    (prefix / "logs").mkdir(parents=True, exist_ok=True)
    (prefix / "temp").mkdir(parents=True, exist_ok=True)
    (prefix / "conf").mkdir(parents=True, exist_ok=True)
    conf = prefix / "conf" / "nginx.conf"
    text = template.read_text() if template is not None else None
    conf.write_text(
        render(servers, f"{host}:{port}", f"127.0.0.1:{status_port}", local_layout(prefix), text)
    )
    return conf


def nginx_command(prefix: Path, conf: Path, test_only: bool = False) -> list[str]:
    # -e: the error log from the first moment, before the config is read (no /var/log)
    argv = [
        nginx_binary(),
        "-p",
        f"{prefix}/",
        "-c",
        str(conf),
        "-e",
        str(prefix / "logs" / "error.log"),
    ]
    return [*argv, "-t", "-q"] if test_only else [*argv, "-g", "daemon off;"]


class NginxProcess(ManagedProcess):
    """NGINX in the foreground on loopback, in front of `servers` (host:port). Ready when a
    request for the workers' /ready gets through it; `.url` is the upstream URL for the
    gateway. Without a `prefix` it makes a temporary one, and removes it on stop after copying
    its logs into `log_dir` (nginx-error.log, nginx-access.log)."""

    def __init__(
        self,
        servers: Sequence[str],
        port: int,
        status_port: int,
        prefix: Path | None = None,
        log_dir: Path | None = None,
        name: str = "nginx",
        template: Path | None = None,
    ) -> None:
        nginx_binary()  # no nginx: fail before making a prefix
        self.owns_prefix = prefix is None
        self.prefix = prefix or make_prefix()
        conf = write_local_config(self.prefix, servers, port, status_port, template=template)
        super().__init__(
            name,
            nginx_command(self.prefix, conf),
            f"http://127.0.0.1:{port}/ready",
            log_dir=log_dir,
        )
        self.servers = list(servers)
        self.status_url = f"http://127.0.0.1:{status_port}/stub_status"
        self.log_dir = log_dir

    def error_log(self) -> str:
        return _read(self.prefix / "logs" / "error.log")

    def access_log(self) -> str:
        return _read(self.prefix / "logs" / "access.log")

    def tail(self, lines: int = 40) -> str:
        """NGINX says what went wrong in its error log, not on its output."""
        return "\n".join([super().tail(lines), *self.error_log().splitlines()[-lines:]]).strip()

    def stop(self, timeout: float = 15.0) -> None:
        super().stop(timeout)
        if self.log_dir is not None:
            for kind in ("error", "access"):
                source = self.prefix / "logs" / f"{kind}.log"
                if source.exists():
                    shutil.copy(source, self.log_dir / f"{self.name}-{kind}.log")
        if self.owns_prefix:
            shutil.rmtree(self.prefix, ignore_errors=True)


def nginx_process(
    port: int,
    upstreams: Sequence[str],
    log_dir: Path | None = None,
    status_port: int | None = None,
    name: str = "nginx",
    template: Path | None = None,
) -> NginxProcess:
    """NGINX on 127.0.0.1:`port` in front of `upstreams` (worker URLs or host:port; with
    GATEWAYS_TEMPLATE, gateway URLs)."""
    servers = [u.removeprefix("http://").rstrip("/") for u in upstreams]
    return NginxProcess(
        servers,
        port,
        status_port or free_port(),
        prefix=None,
        log_dir=log_dir,
        name=name,
        template=template,
    )


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""
