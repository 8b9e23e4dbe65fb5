"""Shared fixtures: the eval manifest, real worker processes, CI skip policy."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.scoring import Clip, load_manifest
from launcher.processes import ManagedProcess, free_port, gateway_process, worker_process
from tests.backend import SCALE_ENV, scaled, timeout_scale

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """With CI=true any skip except `gpu` fails the run (a skipped test proves nothing)."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get("CI", "").lower() == "true" and "gpu" not in item.keywords:
        report.outcome = "failed"
        report.longrepr = f"skipped on CI (only `gpu` tests may skip): {report.longrepr}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test's timeout (its own marker, else the ini default) times ASR_TEST_TIMEOUT_SCALE:
    the model-level tests on a slower CPU backend (tests/backend.py)."""
    scale = timeout_scale()
    if scale == 1.0:
        return
    default = float(config.getini("timeout") or 0)
    for item in items:
        marker = item.get_closest_marker("timeout")
        seconds = float(marker.args[0]) if marker is not None and marker.args else default
        item.add_marker(pytest.mark.timeout(seconds * scale), append=False)


def pytest_report_header(config: pytest.Config) -> str:
    from bench.resources import ct2_cpu_backend

    return f"CTranslate2 CPU backend: {ct2_cpu_backend()}; {SCALE_ENV}={timeout_scale():g}"


@pytest.fixture(scope="session")
def manifest() -> dict[str, Clip]:
    return load_manifest()


@pytest.fixture(scope="session")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("logs")


@pytest.fixture(scope="session")
def worker(log_dir: Path) -> Iterator[ManagedProcess]:
    """One real worker process (embedded model, CPU), shared by the session's tests."""
    port = free_port()
    proc = worker_process(port, log_dir=log_dir).start()
    try:
        yield proc.wait_ready(timeout=scaled(120))
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def gateway(worker: ManagedProcess, log_dir: Path) -> Iterator[ManagedProcess]:
    """A real gateway process in front of the session's worker."""
    port = free_port()
    proc = gateway_process(port, worker.url, log_dir=log_dir).start()
    try:
        yield proc.wait_ready(timeout=scaled(60))
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def whole_file_text(worker: ManagedProcess, manifest: dict[str, Clip]):
    """The worker's whole-file transcription of a clip (language given), cached per clip."""
    import httpx

    cache: dict[str, str] = {}

    def get(clip_id: str) -> str:
        if clip_id not in cache:
            clip = manifest[clip_id]
            response = httpx.post(
                f"{worker.url}/transcribe",
                files={"file": clip.path.open("rb")},
                data={"language": clip.language},
                timeout=scaled(300),
            )
            response.raise_for_status()
            cache[clip_id] = response.json()["text"]
        return cache[clip_id]

    return get
