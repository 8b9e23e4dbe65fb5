"""The device kit's carries: every byte in exactly one part, no carry over its limit, and the
files put back together (and checked) on the other side."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import device_kit
from bench.device_kit import assemble, plan_carries, prepare, stage


def test_carries_fill_in_order_and_split_big_files() -> None:
    carries = plan_carries([("a", 30), ("b", 50), ("c", 5)], limit=40)
    assert [[(p.name, p.offset, p.size) for p in c] for c in carries] == [
        [("a", 0, 30), ("b", 0, 10)],
        [("b", 10, 40)],
        [("c", 0, 5)],
    ]
    assert all(sum(p.size for p in c) <= 40 for c in carries)
    assert [p.carry for c in carries for p in c] == [1, 1, 2, 3]
    exact = plan_carries([("a", 40), ("b", 1)], limit=40)  # a full carry starts the next one
    assert [[p.name for p in c] for c in exact] == [["a"], ["b"]]
    with pytest.raises(ValueError):
        plan_carries([("a", 1)], limit=0)


def test_prepare_stage_assemble_round_trip(tmp_path: Path) -> None:
    files = {}
    for name, size in (("wheels/x.whl", 3000), ("models/m/model.bin", 10_000), ("eval/a", 10)):
        path = tmp_path / "src" / name.replace("/", "_")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(bytes(range(256)) * (size // 256) + b"z" * (size % 256))
        files[name] = path
    kit, dest = tmp_path / "kit", tmp_path / "stage"
    dirs = prepare(files, kit, limit=4096)
    assert [d.name for d in dirs] == ["c1", "c2", "c3", "c4"]
    assert all(sum(f.stat().st_size for f in d.iterdir() if f.name != "manifest.json") <= 4096
               for d in dirs)  # fmt: skip
    plan = (kit / "PLAN.md").read_text()
    assert "stage 1" in plan and "bash bench/gpu_run.sh 4" in plan
    for k in (1, 2, 3):
        stage(k, kit, dest)
    with pytest.raises(FileNotFoundError, match=r"\[4\]"):
        assemble(dest)  # the last carry is missing: said, not half-assembled
    stage(4, kit, dest)
    out = assemble(dest)
    for name, source in files.items():
        assert (out / name).read_bytes() == source.read_bytes()
    # a part altered in transit fails the check
    manifest = json.loads((dest / "manifest.json").read_text())
    (out / "eval/a").unlink()
    part = next(p[4] for p in manifest["parts"] if p[0] == "eval/a")
    (dest / "parts" / part).write_bytes(b"y" * 10)
    with pytest.raises(ValueError, match="SHA-256"):
        assemble(dest)


def test_sources_carry_only_the_chosen_clips(tmp_path: Path, monkeypatch) -> None:
    eval_dir = tmp_path / "eval"
    (eval_dir / "audio").mkdir(parents=True)
    (eval_dir / "manifest.tsv").write_text(
        "id\tpath\tlanguage\nx\taudio/x.wav\tpt\ny\taudio/y.wav\ten\n", encoding="utf-8"
    )
    for cid in "xy":
        (eval_dir / "audio" / f"{cid}.wav").write_bytes(b"RIFF")
    model = tmp_path / "whisper-base"
    model.mkdir()
    (model / "model.bin").write_bytes(b"m")
    (model / ".verified").write_text("sha256 verified\n")
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "w-1-py3-none-any.whl").write_bytes(b"w")
    (wheels / "nginx_1.22_amd64.deb").write_bytes(b"d")  # for the sweep's NGINX
    monkeypatch.setattr(device_kit, "DEVICE_DIR", tmp_path / "kit")
    files = device_kit.sources(wheels, model, eval_dir, ["y"], debs=wheels)
    assert set(files) == {
        "wheels/w-1-py3-none-any.whl", "debs/nginx_1.22_amd64.deb", "models/whisper-base/model.bin",
        "models/whisper-base/.verified", "eval/audio/y.wav", "eval/manifest.tsv",
    }  # fmt: skip
    assert files["eval/manifest.tsv"].read_text().splitlines()[1:] == ["y\taudio/y.wav\ten"]
