"""The other CPU backend for the tests, and how much slower it may be.

CTranslate2 multiplies matrices with MKL on Intel CPUs and with oneDNN elsewhere; CT2_USE_MKL=1
or =0 forces one (bench.resources.ct2_cpu_backend). Both give correct text, not the same text,
and not at the same speed: MKL forced on an AMD CPU is about 7x slower. `make test-backend` runs
the model-level tests (marker `backend`) on the backend this CPU does not pick by default, with
the tests' timeouts multiplied by ASR_TEST_TIMEOUT_SCALE.
"""

from __future__ import annotations

import os

from bench.resources import cpu_is_intel

SCALE_ENV = "ASR_TEST_TIMEOUT_SCALE"


# how much slower the other backend may be: MKL on AMD is ~7x slower than oneDNN there;
# oneDNN on Intel runs about as fast as MKL
OTHER_BACKEND_SCALE = {"MKL": 8.0, "oneDNN": 2.0}


def other_backend_env() -> str:
    """`CT2_USE_MKL=... ASR_TEST_TIMEOUT_SCALE=...` selecting the backend this CPU does not pick
    by default, with timeouts for it (an ASR_TEST_TIMEOUT_SCALE already set is kept)."""
    other = "oneDNN" if cpu_is_intel() else "MKL"
    scale = os.environ.get(SCALE_ENV) or f"{OTHER_BACKEND_SCALE[other]:g}"
    return f"CT2_USE_MKL={int(other == 'MKL')} {SCALE_ENV}={scale}"


def timeout_scale() -> float:
    return max(1.0, float(os.environ.get(SCALE_ENV, "1") or 1))


def scaled(seconds: float) -> float:
    """A wait on model work, stretched for a slower backend."""
    return seconds * timeout_scale()


if __name__ == "__main__":
    print(other_backend_env())
