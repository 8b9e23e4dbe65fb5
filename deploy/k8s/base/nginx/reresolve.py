"""Keep NGINX's worker upstream in step with the worker pool's DNS (a headless Service).

NGINX before 1.27.3 (Debian 12's 1.22, the official images up to 1.27.2) resolves the name of an
upstream `server` once, when it loads its configuration, so workers that start, move or go
away later are never seen. This script runs beside NGINX in the same pod (Kubernetes:
deploy/k8s/base/nginx.yaml) and closes that gap with any NGINX version:

- it reads the configuration rendered from nginx/nginx.conf by launcher/nginx_config.py, in
  which the upstream says `server asr-worker-pool:8001 max_fails=10 fail_timeout=5s;`;
- every `--interval` seconds it looks up the A records of each such name (search domains and
  ndots as in /etc/resolv.conf; a headless Service answers with the addresses of its *ready*
  pods, i.e. the workers whose /ready said 200, after warm-up);
- when the set of addresses changed it writes the configuration with one `server` line per
  address (same parameters) and sends SIGHUP to NGINX's master (pid file in the shared /tmp):
  a graceful reload, requests in flight finish on the old worker processes.

A name with no address yet (no worker ready) becomes one `down` server, so NGINX starts and
answers 502 until a worker is ready; a failed lookup (timeout, SERVFAIL) keeps the addresses
it had. Standard library only: it runs in a plain Python image, from a ConfigMap.

    python reresolve.py --template nginx.conf --output /tmp/nginx.conf --once
    python reresolve.py --template nginx.conf --output /tmp/nginx.conf --pid-file /tmp/nginx.pid
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import random
import re
import signal
import socket
import struct
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

# `server HOST:PORT params;` inside an upstream block (the template's one form)
SERVER_LINE = re.compile(
    r"^(?P<indent>\s*)server\s+(?P<host>[A-Za-z0-9][A-Za-z0-9.-]*):(?P<port>\d+)"
    r"(?P<params>(?:\s+[^\s;]+)*)\s*;\s*$"
)
RCODE_NOERROR, RCODE_NXDOMAIN = 0, 3
TYPE_A, CLASS_IN, TYPE_OPT = 1, 1, 41
UDP_PAYLOAD = 4096  # EDNS0: a pool of ~250 workers still fits one UDP answer


class DnsError(Exception):
    """No definite answer (timeout, SERVFAIL, REFUSED, a malformed reply)."""


def log(event: str, level: str = "info", **fields: object) -> None:
    """One JSON object per line, like the gateway, the workers and NGINX's access log."""
    record = {"event": event, "level": level, **fields}
    record["timestamp"] = datetime.now(UTC).isoformat(timespec="milliseconds")
    print(json.dumps(record), flush=True)


# ---- the configuration ---------------------------------------------------------------------


def upstream_hosts(template: str) -> list[str]:
    """Names (not addresses) of the `server` lines, in order of appearance."""
    hosts: list[str] = []
    for line in template.splitlines():
        match = SERVER_LINE.match(line)
        if match and not _is_address(match["host"]) and match["host"] not in hosts:
            hosts.append(match["host"])
    return hosts


def expand(template: str, addresses: dict[str, list[str]]) -> str:
    """The template with each named `server` line repeated once per address of its name; a
    name without addresses becomes one `down` server (NGINX needs one; it answers 502)."""
    out: list[str] = []
    for line in template.splitlines():
        match = SERVER_LINE.match(line)
        if not match or _is_address(match["host"]):
            out.append(line)
            continue
        indent, host, port, params = match["indent"], match["host"], match["port"], match["params"]
        found = addresses.get(host, [])
        out.append(f"{indent}# {host}:{port} resolved to {', '.join(found) or 'nothing'}")
        if not found:
            out.append(f"{indent}server 127.0.0.1:{port}{params} down;")
        out.extend(f"{indent}server {address}:{port}{params};" for address in found)
    return "\n".join(out) + "\n"


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


# ---- DNS -----------------------------------------------------------------------------------


def build_query(query_id: int, name: str, edns: bool = True) -> bytes:
    """An A query with recursion desired (and an EDNS0 OPT record offering UDP_PAYLOAD)."""
    header = struct.pack("!6H", query_id, 0x0100, 1, 0, 0, 1 if edns else 0)
    labels = [label for label in name.rstrip(".").split(".") if label]
    qname = b"".join(bytes([len(label)]) + label.encode("ascii") for label in labels) + b"\0"
    opt = b"\0" + struct.pack("!HHIH", TYPE_OPT, UDP_PAYLOAD, 0, 0) if edns else b""
    return header + qname + struct.pack("!HH", TYPE_A, CLASS_IN) + opt


def parse_response(data: bytes, query_id: int) -> tuple[int, bool, list[str]]:
    """(rcode, truncated, IPv4 addresses of the answer section)."""
    try:
        reply_id, flags, questions, answers, _, _ = struct.unpack_from("!6H", data, 0)
        if reply_id != query_id or not flags & 0x8000:
            raise DnsError("not the reply to our query")
        offset = 12
        for _ in range(questions):
            offset = _skip_name(data, offset) + 4
        found: list[str] = []
        for _ in range(answers):
            offset = _skip_name(data, offset)
            rtype, rclass, _ttl, length = struct.unpack_from("!HHIH", data, offset)
            offset += 10
            if offset + length > len(data):
                raise DnsError("reply cut short")
            rdata = data[offset : offset + length]
            offset += length
            if rtype == TYPE_A and rclass == CLASS_IN and len(rdata) == 4:
                found.append(socket.inet_ntoa(rdata))
    except (struct.error, IndexError) as exc:
        raise DnsError(f"malformed reply: {exc}") from exc
    return flags & 0x000F, bool(flags & 0x0200), found


def _skip_name(data: bytes, offset: int) -> int:
    while True:
        length = data[offset]
        if length == 0:
            return offset + 1
        if length & 0xC0 == 0xC0:  # a compression pointer ends the name
            return offset + 2
        offset += 1 + length


def query_a(
    server: tuple[str, int], name: str, timeout: float, edns: bool = True
) -> tuple[int, list[str]]:
    """Ask one server over UDP, then over TCP when the answer was truncated."""
    query_id = random.randrange(1 << 16)
    query = build_query(query_id, name, edns)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.connect(server)
        sock.send(query)
        deadline = time.monotonic() + timeout
        while True:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                rcode, truncated, found = parse_response(sock.recv(65535), query_id)
            except DnsError:
                if time.monotonic() >= deadline:
                    raise
                continue  # a stray datagram: wait for ours
            break
    if truncated:
        with socket.create_connection(server, timeout=timeout) as conn:
            conn.sendall(struct.pack("!H", len(query)) + query)
            (length,) = struct.unpack("!H", _read_exactly(conn, 2))
            rcode, _, found = parse_response(_read_exactly(conn, length), query_id)
    return rcode, found


def _read_exactly(conn: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise DnsError("connection closed mid-reply")
        data += chunk
    return bytes(data)


@dataclass
class Resolver:
    """The stub resolver's rules of resolv.conf(5): nameservers in turn, search domains for a
    name with fewer than `ndots` dots first, then the name as given."""

    nameservers: list[tuple[str, int]]
    search: list[str] = field(default_factory=list)
    ndots: int = 1
    timeout: float = 2.0

    @classmethod
    def from_resolv_conf(
        cls, text: str, nameservers: Sequence[tuple[str, int]] = (), timeout: float = 2.0
    ) -> Resolver:
        found: list[tuple[str, int]] = []
        search: list[str] = []
        ndots = 1
        for line in text.splitlines():
            words = line.split("#", 1)[0].split()
            if not words:
                continue
            if words[0] == "nameserver" and len(words) > 1:
                found.append((words[1], 53))
            elif words[0] in ("search", "domain"):
                search = words[1:]
            elif words[0] == "options":
                for option in words[1:]:
                    if option.startswith("ndots:"):
                        ndots = int(option.split(":", 1)[1])
        servers = list(nameservers) or found or [("127.0.0.1", 53)]
        return cls(servers, search, ndots, timeout)

    def candidates(self, name: str) -> list[str]:
        if name.endswith("."):
            return [name]
        searched = [f"{name}.{domain}" for domain in self.search]
        return [*searched, name] if name.count(".") < self.ndots else [name, *searched]

    def lookup(self, name: str) -> list[str]:
        """Sorted IPv4 addresses; [] when every candidate definitely has none (NXDOMAIN or no
        A record); DnsError when none answered and at least one lookup failed."""
        failures: list[str] = []
        for candidate in self.candidates(name):
            try:
                rcode, found = self._ask(candidate)
            except (OSError, DnsError) as exc:
                failures.append(f"{candidate}: {exc}")
                continue
            if rcode == RCODE_NOERROR and found:
                return sorted(set(found), key=ipaddress.ip_address)
            if rcode not in (RCODE_NOERROR, RCODE_NXDOMAIN):
                failures.append(f"{candidate}: rcode {rcode}")
        if failures:
            raise DnsError("; ".join(failures))
        return []

    def _ask(self, name: str) -> tuple[int, list[str]]:
        error: Exception = DnsError("no nameserver")
        for server in self.nameservers:
            try:
                return query_a(server, name, self.timeout)
            except (OSError, DnsError) as exc:
                error = exc
        raise error


# ---- the loop ------------------------------------------------------------------------------


@dataclass
class Syncer:
    template: str
    output: Path
    resolver: Resolver
    pid_file: Path | None = None
    addresses: dict[str, list[str]] = field(default_factory=dict)
    reload_pending: bool = False

    def refresh(self) -> bool:
        """Look every name up; rewrite the configuration when it changed. True if rewritten."""
        for host in upstream_hosts(self.template):
            try:
                found = self.resolver.lookup(host)
            except DnsError as exc:
                log("upstream_lookup_failed", "warning", host=host, error=str(exc))
                self.addresses.setdefault(host, [])  # first time: start with none
                continue
            if found != self.addresses.get(host):
                log("upstream_addresses", host=host, addresses=found)
                self.addresses[host] = found
        text = expand(self.template, self.addresses)
        current = self.output.read_text() if self.output.exists() else None
        if text == current:
            return False
        temporary = self.output.with_name(f".{self.output.name}.{os.getpid()}")
        temporary.write_text(text)
        os.replace(temporary, self.output)  # NGINX never reads a half-written file
        self.reload_pending = True
        return True

    def reload(self) -> None:
        """SIGHUP to NGINX's master once it has written its pid (until then: still pending)."""
        if not self.reload_pending or self.pid_file is None:
            return
        try:
            pid = int(self.pid_file.read_text().strip())
            # a pid file left by an NGINX that crashed may name another process by now
            if b"nginx" not in Path(f"/proc/{pid}/cmdline").read_bytes():
                return
            os.kill(pid, signal.SIGHUP)
        except (FileNotFoundError, ValueError, ProcessLookupError):
            return  # NGINX is not running yet: it reads the new file when it starts
        self.reload_pending = False
        log("nginx_reloaded", pid=pid, servers=sum(len(a) for a in self.addresses.values()))


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--template", type=Path, required=True, help="rendered nginx.conf")
    parser.add_argument("--output", type=Path, required=True, help="what NGINX is started with")
    parser.add_argument("--pid-file", type=Path, help="NGINX master's pid file (to reload it)")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between lookups")
    parser.add_argument("--once", action="store_true", help="write the file once and exit")
    parser.add_argument("--resolv-conf", type=Path, default=Path("/etc/resolv.conf"))
    parser.add_argument(
        "--dns-server", action="append", default=[], help="HOST:PORT instead of resolv.conf's"
    )
    parser.add_argument("--timeout", type=float, default=2.0, help="per DNS query")
    args = parser.parse_args(None if argv is None else list(argv))
    servers = [(s.rsplit(":", 1)[0], int(s.rsplit(":", 1)[1])) for s in args.dns_server]
    resolv = args.resolv_conf.read_text() if args.resolv_conf.exists() else ""
    resolver = Resolver.from_resolv_conf(resolv, servers, args.timeout)
    syncer = Syncer(args.template.read_text(), args.output, resolver, args.pid_file)
    hosts = upstream_hosts(syncer.template)
    log("reresolve_started", hosts=hosts, nameservers=[f"{h}:{p}" for h, p in resolver.nameservers])
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    while True:
        syncer.refresh()
        if args.once:
            return 0
        syncer.reload()
        if stop.wait(args.interval):
            log("reresolve_stopped")
            return 0


if __name__ == "__main__":
    sys.exit(main())
