"""Render nginx/nginx.conf, the template behind compose, `make run` and the tests.

`python -m launcher.nginx_config --server asr-worker-gpu0:8001 ... --output FILE` is what the
compose `nginx-config` service runs (standard library only, so a bare python image can run it
from the mounted source); launcher/nginx.py starts NGINX locally.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parent.parent / "nginx" / "nginx.conf"
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
