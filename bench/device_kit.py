"""Carry what a GPU measurement needs to a lent device machine, and put it together there.

A device call sends the working tree plus at most 64 MiB of ignored paths (`carry`); the
machine has no network, and a warm machine keeps files outside the tree for about 30 s after
each call. The worker's wheels for the machine's Python 3.12 (~83 MB: ctranslate2 and PyAV
are most of it), the embedded model (148 MB) and the eval clips (31 MB) therefore travel in
several carries of at most CARRY_MIB (with Debian's nginx package, for the sweep), big files
split across them, each call back to back:

    here:    python -m bench.device_kit prepare          # .device/c1..cN and .device/PLAN.md
    device:  python3 -m bench.device_kit stage 1         # carry [".device/c1"], and so on
    device:  bash bench/gpu_run.sh N                     # carry [".device/cN"]: the last one
                                                         # stages, assembles, installs, measures

`stage` copies a carry into STAGE (outside the working tree); `assemble` joins the parts and
checks every file's SHA-256 against the manifest written by `prepare`. Standard library only:
on the device it runs before anything is installed. .device/PLAN.md lists the exact calls.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

REPO_ROOT = Path(__file__).resolve().parent.parent
DEVICE_DIR = Path(os.environ.get("ASR_GPU_KIT", REPO_ROOT / ".device"))  # ignored by git
STAGE = Path(os.environ.get("ASR_GPU_STAGE", "/tmp/asr-gpu"))
CARRY_MIB = 55  # of the 64 MiB a call carries; the working tree (~3 MB) travels beside it
MANIFEST = "manifest.json"
# what the worker, the gateway and the bench need that the device's Python 3.12 lacks
# (its image has numpy, httpx, tokenizers, onnxruntime, huggingface-hub, psutil, matplotlib...)
WHEELS = (
    "ctranslate2==4.8.5", "av==18.1.0", "faster-whisper==1.2.1", "fastapi==0.165.0",
    "starlette==1.10.0", "pydantic==2.14.4", "pydantic-core==2.50.5",
    "pydantic-settings==2.16.3", "python-dotenv==1.2.4", "annotated-types==0.8.0",
    "typing-inspection==0.4.5", "uvicorn==0.55.0", "python-multipart==0.0.34",
    "structlog==26.1.0", "soxr==1.1.0", "websockets==17.4", "jiwer==4.0.0",
    "rapidfuzz==3.14.6", "stop-words==2025.11.4",
)  # fmt: skip
PLATFORMS = (
    "manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64",
    "manylinux2014_x86_64", "manylinux1_x86_64",
)  # fmt: skip


@dataclass(frozen=True)
class Part:
    name: str  # the file's path once assembled (relative to STAGE/files)
    carry: int  # 1-based
    offset: int
    size: int

    @property
    def part_name(self) -> str:
        return f"{self.name.replace('/', '__')}.{self.offset}"


def plan_carries(files: Sequence[tuple[str, int]], limit: int) -> list[list[Part]]:
    """Fill carries of `limit` bytes in order, splitting a file across carries where it does
    not fit (pure; every byte of every file lands in exactly one part)."""
    if limit <= 0:
        raise ValueError("a carry must hold something")
    carries: list[list[Part]] = [[]]
    room = limit
    for name, size in files:
        offset = 0
        while True:
            if room == 0:
                carries.append([])
                room = limit
            take = min(room, size - offset)
            carries[-1].append(Part(name, len(carries), offset, take))
            offset += take
            room -= take
            if offset >= size:
                break
    return carries


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download_wheels(dest: Path, python_version: str = "3.12") -> Path:
    """The wheels for the device's Python, from PyPI (`pip download`, no dependencies)."""
    dest.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:"]
    argv += ["--python-version", python_version, "--implementation", "cp", "-d", str(dest)]
    argv += [arg for platform in PLATFORMS for arg in ("--platform", platform)]
    subprocess.run([*argv, *WHEELS], check=True)
    return dest


def download_debs(dest: Path) -> Path:
    """Debian's nginx package (its binary runs from an unpacked copy): the sweep puts NGINX in
    front of the gateways and the workers, and the device image may have none."""
    dest.mkdir(parents=True, exist_ok=True)
    if shutil.which("apt-get") is None:
        print("no apt-get here: the sweep will need the device's own nginx", file=sys.stderr)
        return dest
    subprocess.run(["apt-get", "download", "nginx"], cwd=dest, check=True)
    return dest


def sources(
    wheels: Path,
    model_dir: Path,
    eval_dir: Path,
    clips: list[str] | None,
    debs: Path | None = None,
) -> dict[str, Path]:
    """{name once assembled: source path}: wheels, .deb packages, the model (its verified
    stamp too), the eval manifest (only the clips carried) and their audio."""
    out: dict[str, Path] = {f"wheels/{w.name}": w for w in sorted(wheels.glob("*.whl"))}
    if debs is not None:
        out.update({f"debs/{d.name}": d for d in sorted(debs.glob("*.deb"))})
    for path in sorted(model_dir.iterdir()):
        if path.is_file():
            out[f"models/{model_dir.name}/{path.name}"] = path
    lines = (eval_dir / "manifest.tsv").read_text(encoding="utf-8").splitlines()
    kept = [lines[0]]
    for line in lines[1:]:
        cid, rel = line.split("\t")[:2]
        if clips is None or cid in clips:
            kept.append(line)
            out[f"eval/{rel}"] = eval_dir / rel
    manifest = DEVICE_DIR / "eval-manifest.tsv"
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_text("\n".join(kept) + "\n", encoding="utf-8")
    out["eval/manifest.tsv"] = manifest
    return out


def prepare(
    files: dict[str, Path], out: Path = DEVICE_DIR, limit: int = CARRY_MIB * 2**20
) -> list[Path]:
    """Write the carries (out/c1..cN, each with the manifest) and out/PLAN.md."""
    for old in out.glob("c[0-9]*"):
        shutil.rmtree(old)
    names = list(files)
    carries = plan_carries([(n, files[n].stat().st_size) for n in names], limit)
    manifest = {
        "carries": len(carries),
        "files": {n: {"size": files[n].stat().st_size, "sha256": _sha256(files[n])} for n in names},
        "parts": [[p.name, p.carry, p.offset, p.size, p.part_name] for c in carries for p in c],
    }
    dirs = []
    for k, parts in enumerate(carries, 1):
        folder = out / f"c{k}"
        folder.mkdir(parents=True)
        for part in parts:
            with files[part.name].open("rb") as src, (folder / part.part_name).open("wb") as dst:
                src.seek(part.offset)
                _copy(src, dst, part.size)
        (folder / MANIFEST).write_text(json.dumps(manifest, indent=1))
        dirs.append(folder)
    (out / "PLAN.md").write_text(plan_text(dirs), encoding="utf-8")
    return dirs


def _copy(src: BinaryIO, dst: BinaryIO, size: int) -> None:
    left = size
    while left:
        block = src.read(min(1 << 20, left))
        if not block:
            raise OSError("source file shorter than planned")
        dst.write(block)
        left -= len(block)


def plan_text(dirs: list[Path]) -> str:
    sizes = [sum(f.stat().st_size for f in d.iterdir()) / 2**20 for d in dirs]
    last = len(dirs)
    lines = [
        "# Device calls for the GPU measurement (bench/device_kit.py, bench/gpu_run.sh)",
        "",
        "Each call within ~30 s of the previous one (the machine stays warm that long and keeps",
        "/tmp). The checkout that calls must hold this branch's bench/ (the device gets the",
        "calling session's checkout); .device/ is git-ignored, so the carries travel only as",
        "`carry`. If a call finds a cold machine (`warm: false`), start again from call 1.",
        "Smaller runs: prefix the last command, e.g. `ASR_GPU_LEVELS=16,128",
        "ASR_GPU_SESSIONS=128,256 bash bench/gpu_run.sh N` (bench/gpu_run.sh lists the knobs).",
        "",
    ]
    for k, (d, mib) in enumerate(zip(dirs, sizes, strict=True), 1):
        if k < last:
            command = f"python3 -m bench.device_kit stage {k}"
            timeout = 120
        else:
            command = f"bash bench/gpu_run.sh {k}"
            timeout = 570
        lines.append(
            f"{k}. run(command={command!r}, carry=[{_relative(d)!r}], "
            f"timeout_s={timeout})  # {mib:.1f} MiB"
        )
    lines += ["", "Then give_back. Results: the files under $OUT (JSON, report.md, logs)."]
    return "\n".join(lines) + "\n"


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def stage(k: int, source: Path = DEVICE_DIR, dest: Path = STAGE) -> int:
    """Copy carry k into dest/parts (the manifest too); returns the parts copied."""
    folder = source / f"c{k}"
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} did not travel: name it in the call's carry")
    parts = dest / "parts"
    parts.mkdir(parents=True, exist_ok=True)
    copied = 0
    for path in folder.iterdir():
        shutil.copy(path, (dest / MANIFEST) if path.name == MANIFEST else parts / path.name)
        copied += 1
    return copied


def assemble(dest: Path = STAGE) -> Path:
    """Join the staged parts into dest/files and check every file; raise naming what is
    missing (a carry never staged, or staged on a machine since given back)."""
    manifest = json.loads((dest / MANIFEST).read_text())
    parts_dir, files_dir = dest / "parts", dest / "files"
    missing = sorted(
        {carry for _, carry, _, _, part in manifest["parts"] if not (parts_dir / part).is_file()}
    )
    if missing:
        raise FileNotFoundError(f"carries {missing} are not staged here: run their calls again")
    for name, info in manifest["files"].items():
        target = files_dir / name
        if target.is_file() and target.stat().st_size == info["size"]:
            continue  # assembled by an earlier call
        target.parent.mkdir(parents=True, exist_ok=True)
        pieces = sorted((p[2], p[4]) for p in manifest["parts"] if p[0] == name)
        with target.open("wb") as out:
            for _offset, part in pieces:
                with (parts_dir / part).open("rb") as src:
                    shutil.copyfileobj(src, out, 1 << 20)
        if _sha256(target) != info["sha256"]:
            target.unlink()
            raise ValueError(f"{name}: SHA-256 differs after assembly")
    return files_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="verb", required=True)
    prep = sub.add_parser("prepare", help="here: download wheels, write .device/c1..cN")
    prep.add_argument("--wheels", type=Path, help="already downloaded wheels (default: fetch)")
    prep.add_argument(
        "--debs", type=Path, help="already downloaded .deb files (default: apt-get nginx)"
    )
    prep.add_argument("--model-dir", type=Path, default=REPO_ROOT / "models" / "whisper-base")
    prep.add_argument("--eval-dir", type=Path, help="default: bench.scoring's eval dir")
    prep.add_argument("--clips", help="clip ids to carry (default: all)")
    prep.add_argument("--carry-mib", type=int, default=CARRY_MIB)
    stage_cmd = sub.add_parser("stage", help="device: copy carry K out of the working tree")
    stage_cmd.add_argument("k", type=int)
    sub.add_parser("assemble", help="device: join and check the staged files")
    args = parser.parse_args(argv)
    if args.verb == "prepare":
        eval_dir = args.eval_dir
        if eval_dir is None:
            from bench.scoring import eval_dir as default_eval_dir

            eval_dir = default_eval_dir()
        wheels = args.wheels or download_wheels(DEVICE_DIR / "wheels")
        clips = [c.strip() for c in args.clips.split(",")] if args.clips else None
        debs = args.debs or download_debs(DEVICE_DIR / "debs")
        files = sources(wheels, args.model_dir, eval_dir, clips, debs)
        dirs = prepare(files, DEVICE_DIR, args.carry_mib * 2**20)
        print((DEVICE_DIR / "PLAN.md").read_text(), end="")
        return 0 if dirs else 1
    if args.verb == "stage":
        print(f"staged {stage(args.k)} files of carry {args.k} into {STAGE}")
        return 0
    try:
        print(f"assembled into {assemble()}")
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
