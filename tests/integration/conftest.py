"""Fixtures of the integration tests beyond tests/conftest.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from launcher.processes import ManagedProcess, free_port, gateway_process
from tests.backend import scaled
from tests.openai_utils import openai_gateway_env


@pytest.fixture(scope="session")
def openai_gateway(worker: ManagedProcess, log_dir: Path) -> Iterator[ManagedProcess]:
    """A real gateway as an OpenAI SDK user meets it: API keys required, an origin allow-list,
    small upload and append limits (tests/openai_utils.py)."""
    env = openai_gateway_env()
    proc = gateway_process(free_port(), worker.url, env=env, log_dir=log_dir, name="gateway-openai")
    proc.start()
    try:
        yield proc.wait_ready(timeout=scaled(60))
    finally:
        proc.stop()
