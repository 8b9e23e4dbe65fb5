"""The design's boundaries (pyproject.toml's import-linter contracts): the gateway never
imports the worker, the worker never the gateway, the client only the contracts package, the
benchmark measures from outside."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_import_linter_contracts_hold() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert re.search(r"Contracts: 7 kept, 0 broken", result.stdout), result.stdout[-1000:]


def test_no_gateway_module_imports_asr() -> None:
    pattern = re.compile(r"^\s*(from|import) asr(\.|\s|$)", re.M)
    offenders = [p for p in (ROOT / "api").rglob("*.py") if pattern.search(p.read_text())]
    assert offenders == []


def test_pyproject_has_no_ignored_imports() -> None:
    assert "ignore_imports" not in (ROOT / "pyproject.toml").read_text()
