"""docs/https.md's NGINX server block, run for real: TLS in front of the gateway, the page
loaded from a non-localhost name (a secure context only thanks to HTTPS), the WebSocket and
the upload through the proxy."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from bench.scoring import Clip
from launcher.processes import ManagedProcess, free_port
from tests.e2e.conftest import (
    LEAD_SEC,
    Launch,
    final_text,
    mic_wav,
    open_page,
    wait_state,
)

pytestmark = [pytest.mark.browser, pytest.mark.nginx]

DOC = Path(__file__).resolve().parents[2] / "docs" / "https.md"
HOST = "asr.test"  # resolved to 127.0.0.1 inside Chromium only


def doc_server_block() -> str:
    """The first ```nginx block of docs/https.md: the map and the TLS server."""
    blocks = re.findall(r"```nginx\n(.*?)```", DOC.read_text(), re.DOTALL)
    assert blocks and "listen 443 ssl;" in blocks[0], "docs/https.md lost its server block"
    return blocks[0]


def self_signed(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "asr.pem", directory / "asr-key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-keyout", str(key), "-out", str(cert), "-subj", f"/CN={HOST}",
            "-addext", f"subjectAltName=DNS:{HOST},IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    return cert, key


def wait_port(port: int, proc: ManagedProcess, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.alive, proc.tail()
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nginx not listening on {port}:\n{proc.tail()}")


@pytest.fixture
def https_proxy(gateway: ManagedProcess, tmp_path: Path) -> Any:
    """NGINX with the doc's server block on a free port, in front of the session's gateway."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        pytest.skip("nginx is missing: apt-get install -y nginx")
    port = free_port()
    cert, key = self_signed(tmp_path)
    upstream = gateway.url.removeprefix("http://")
    block = (
        doc_server_block()
        .replace("listen 443 ssl;", f"listen 127.0.0.1:{port} ssl;")
        .replace("listen [::]:443 ssl;", "")
        .replace("/etc/nginx/certs/asr.pem", str(cert))
        .replace("/etc/nginx/certs/asr-key.pem", str(key))
        .replace("127.0.0.1:8000", upstream)
    )
    for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (tmp_path / name).mkdir()
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        f"daemon off;\npid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log warn;\n"
        "events { worker_connections 64; }\n"
        "http {\n"
        f"  access_log off;\n  client_body_temp_path {tmp_path}/client_body;\n"
        f"  proxy_temp_path {tmp_path}/proxy;\n  fastcgi_temp_path {tmp_path}/fastcgi;\n"
        f"  uwsgi_temp_path {tmp_path}/uwsgi;\n  scgi_temp_path {tmp_path}/scgi;\n"
        f"{block}\n}}\n"
    )
    proc = ManagedProcess(
        f"nginx-https-{port}", [nginx, "-p", str(tmp_path), "-c", str(conf)], None, log_dir=tmp_path
    )
    proc.start()
    try:
        wait_port(port, proc)
        yield f"https://{HOST}:{port}"
    finally:
        proc.stop()


@pytest.mark.timeout(90)
def test_page_over_https_through_nginx(
    https_proxy: str,
    launch: Launch,
    manifest: dict[str, Clip],
    tmp_path: Path,
    shots: Path,
) -> None:
    clip = manifest["ufpalign-coxinha"]
    mic = mic_wav(clip.path, tmp_path / "mic.wav")
    browser = launch(
        mic,
        extra_args=("--ignore-certificate-errors", f"--host-resolver-rules=MAP {HOST} 127.0.0.1"),
    )
    page = open_page(browser, f"{https_proxy}/")
    assert page.evaluate("window.isSecureContext") is True
    cache, etag = page.evaluate(
        """fetch('/app.js', {cache: 'no-store'})
             .then(r => [r.headers.get('cache-control'), r.headers.get('etag')])"""
    )
    assert cache == "no-cache" and etag, (cache, etag)  # through the proxy unchanged

    page.select_option("#language", clip.language)
    page.click("#record")
    wait_state(page, "live", timeout_ms=20_000)
    page.wait_for_timeout((LEAD_SEC + clip.duration_s + 0.5) * 1000)
    page.click("#record")
    assert wait_state(page, "closed", "failed", timeout_ms=30_000) == "closed", page.inner_text(
        "#alerts"
    )
    assert "coxinha" in final_text(page).lower()

    page.set_input_files("#upload-file", str(clip.path))
    page.click("#upload-submit")
    page.wait_for_function(
        "document.getElementById('upload-text').textContent.startsWith('Pronto')", timeout=30_000
    )
    assert "coxinha" in final_text(page).lower()
    page.screenshot(path=str(shots / "https-nginx.png"))
    assert not page.errors, page.errors
