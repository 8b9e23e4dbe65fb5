"""The GPU measurement's device script at a tiny size on this machine: the model and clips
carried in parts, staged call by call, assembled and checked, then the worker load profile
(JFK word for word first) and the end-to-end sweep, their JSON under $OUT."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.nginx, pytest.mark.timeout(240)]


def test_device_script_at_a_tiny_size(tmp_path: Path) -> None:
    kit, stage_dir, out = tmp_path / "kit", tmp_path / "stage", tmp_path / "out"
    wheels = tmp_path / "wheels"
    wheels.mkdir()  # this machine's packages are used (ASR_GPU_NO_INSTALL)
    env = {
        **os.environ,
        "ASR_GPU_KIT": str(kit),
        "ASR_GPU_STAGE": str(stage_dir),
        "OUT": str(out),
        "PYTHON": sys.executable,
        "ASR_GPU_SMALL": "1",
        "ASR_GPU_NO_INSTALL": "1",
    }

    def run(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            argv, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout
        )
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        return done

    clips = "jfk,fleurs-pt-000,fleurs-en-002"
    prep = [sys.executable, "-m", "bench.device_kit", "prepare", "--wheels", str(wheels)]
    prep += ["--debs", str(wheels)]  # no .deb: this machine's nginx serves
    plan = run(*prep, "--clips", clips).stdout
    carries = sorted(kit.glob("c[0-9]*"))
    assert len(carries) == 3  # 148 MB of model and 1.3 MB of clips in carries of 55 MiB
    assert all(sum(f.stat().st_size for f in c.iterdir()) <= 55 * 2**20 + 2**16 for c in carries)
    assert f"bash bench/gpu_run.sh {len(carries)}" in plan
    for k in range(1, len(carries)):
        run(sys.executable, "-m", "bench.device_kit", "stage", str(k))
    run("bash", "bench/gpu_run.sh", str(len(carries)), timeout=220)

    results = {}
    for path in out.glob("*.json"):
        body = json.loads(path.read_text())
        results.update({k: body[k] for k in ("worker_load", "sweep") if k in body})
    load = results["worker_load"]
    assert load["check"]["clip"] == "jfk" and load["check"]["word_for_word"]
    assert not load.get("aborted") and load["levels"][0]["windows"] == 4
    assert {row["batch"] for row in load["ceiling"]["batches"]} == {1, 2}
    # the model put back together from its parts (the worker's model dir: gpu_run.sh)
    model = stage_dir / "files" / "models" / "whisper-base" / "model.bin"
    assert model.stat().st_size == 145_217_532
    [level] = results["sweep"]["levels"]
    assert level["sessions"] == 2 and level["failed_sessions"] == 0 and level["passes"]
    log = (out / "gpu_run.log").read_text()
    assert "assemble" in log and "end-to-end sweep" in log
