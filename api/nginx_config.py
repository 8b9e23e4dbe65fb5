"""Render nginx/nginx.conf (the template behind compose and `make run`) and start NGINX.

`python -m api.nginx_config --server asr-worker-gpu0:8001 ... --output FILE` is what the compose
`nginx-config` service runs; `make run` and the tests call `nginx_process()`.
"""

from __future__ import annotations

import argparse
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from api.processes import REPO_ROOT, ManagedProcess, free_port

TEMPLATE = REPO_ROOT / "nginx" / "nginx.conf"
PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")
SERVER = "server"  # a template line holding {{ server }} is repeated per worker


@dataclass(frozen=True)
class NginxLayout:
    """Where NGINX keeps its pid, logs and request-body temp files."""

    pid_path: str
    error_log: str
    access_log: str
    temp_dir: str


# the official nginx image: logs to the container's output, temp files where it expects them
CONTAINER_LAYOUT = NginxLayout(
    pid_path="/tmp/nginx.pid",
    error_log="stderr",
    access_log="/dev/stdout",
    temp_dir="/var/cache/nginx",
)


def local_layout(prefix: Path) -> NginxLayout:
    """Everything inside `prefix`, so NGINX runs without root paths."""
    return NginxLayout(
        pid_path=str(prefix / "nginx.pid"),
        error_log=str(prefix / "logs" / "error.log"),
        access_log=str(prefix / "logs" / "access.log"),
        temp_dir=str(prefix / "temp"),
    )


def render(
    servers: Sequence[str],
    listen: str,
    status_listen: str,
    layout: NginxLayout,
    template: str | None = None,
) -> str:
    """The template with every placeholder filled; unknown or missing values raise."""
    if not servers:
        raise ValueError("at least one worker address is needed")
    values = {
        "listen": listen,
        "status_listen": status_listen,
        "pid_path": layout.pid_path,
        "error_log": layout.error_log,
        "access_log": layout.access_log,
        "temp_dir": layout.temp_dir,
    }
    text = TEMPLATE.read_text() if template is None else template
    out: list[str] = []
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            out.append(line)  # comments may name placeholders; they are never filled
        elif SERVER in PLACEHOLDER.findall(line):
            out.extend(_fill(line, {**values, SERVER: server}) for server in servers)
        else:
            out.append(_fill(line, values))
    return "\n".join(out) + "\n"


def _fill(line: str, values: dict[str, str]) -> str:
    def sub(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise KeyError(f"unknown placeholder {{{{ {name} }}}} in the nginx template")
        return values[name]

    return PLACEHOLDER.sub(sub, line)


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
    prefix: Path, servers: Sequence[str], port: int, status_port: int, host: str = "127.0.0.1"
) -> Path:
    """Render the template for a local run into prefix/conf/nginx.conf."""
    (prefix / "logs").mkdir(parents=True, exist_ok=True)
    (prefix / "temp").mkdir(parents=True, exist_ok=True)
    (prefix / "conf").mkdir(parents=True, exist_ok=True)
    conf = prefix / "conf" / "nginx.conf"
    conf.write_text(
        render(servers, f"{host}:{port}", f"127.0.0.1:{status_port}", local_layout(prefix))
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
    ) -> None:
        nginx_binary()  # no nginx: fail before making a prefix
        self.owns_prefix = prefix is None
        self.prefix = prefix or make_prefix()
        conf = write_local_config(self.prefix, servers, port, status_port)
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
) -> NginxProcess:
    """NGINX on 127.0.0.1:`port` in front of `upstreams` (worker URLs or host:port)."""
    servers = [u.removeprefix("http://").rstrip("/") for u in upstreams]
    return NginxProcess(
        servers, port, status_port or free_port(), prefix=None, log_dir=log_dir, name=name
    )


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="render nginx/nginx.conf")
    parser.add_argument("--server", action="append", required=True, help="worker host:port")
    parser.add_argument("--listen", default="8080")
    parser.add_argument("--status-listen", default="8081")
    parser.add_argument("--template", type=Path, default=TEMPLATE)
    parser.add_argument("--output", type=Path, help="default: stdout")
    args = parser.parse_args(argv)
    text = render(
        args.server, args.listen, args.status_listen, CONTAINER_LAYOUT, args.template.read_text()
    )
    if args.output is None:
        print(text, end="")
    else:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text)
        print(f"wrote {args.output} ({len(args.server)} upstream servers)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
