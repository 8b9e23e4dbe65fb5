#!/bin/bash
# The GPU measurement of issue 17 in one device call, after the staging calls of
# bench/device_kit.py (.device/PLAN.md lists them all):
#
#   bash bench/gpu_run.sh N        # N = the last carry, named in this call's carry
#
# 1. stage carry N, assemble and check every staged file, install the wheels (/tmp/site);
# 2. make cuBLAS 12 / cuDNN 9 findable (ctranslate2's wheel wants cuBLAS 12; a CUDA 13 machine
#    gets links named libcublas*.so.12 to its cuBLAS 13: docs/benchmarks.md, "GPU");
# 3. the worker load profile on one GPU worker: JFK word for word first (no figure counts
#    otherwise), levels of requests in flight, the CTranslate2 ceiling at batch 1 and 16;
# 4. the end-to-end sweep: gateways behind NGINX, the worker behind NGINX, real-time sessions.
# Results (JSON, report.md, a log) under $OUT; each phase has its own time limit and writes its
# JSON as it goes, so a phase cut short still returns what it measured.
#
# ASR_GPU_SMALL=1 runs tiny sizes on whatever device there is (the CPU test in tests/);
# ASR_GPU_NO_INSTALL=1 uses the running Python's packages; PYTHON picks the interpreter.
set -uo pipefail
LAST=${1:?usage: bash bench/gpu_run.sh LAST_CARRY}
PY=${PYTHON:-python3}
STAGE=${ASR_GPU_STAGE:-/tmp/asr-gpu}
OUT=${OUT:-$PWD/.device/out}
mkdir -p "$OUT"
LOG=$OUT/gpu_run.log
export PYTHONUNBUFFERED=1
say() { echo "[gpu_run $(date +%H:%M:%S)] $*" | tee -a "$LOG"; }

say "stage carry $LAST, assemble"
$PY -m bench.device_kit stage "$LAST" >>"$LOG" 2>&1 || { say "stage failed"; exit 2; }
$PY -m bench.device_kit assemble >>"$LOG" 2>&1 || { tail -3 "$LOG"; say "assemble failed"; exit 2; }
FILES=$STAGE/files
if [ -z "${ASR_GPU_NO_INSTALL:-}" ]; then
    say "install wheels"
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site "$FILES"/wheels/*.whl >>"$LOG" 2>&1 || { say "pip failed"; exit 3; }
    export PYTHONPATH=/tmp/site:$PWD
fi
export ASR_WORKER_MODELS_DIR=$FILES/models ASR_EVAL_DIR=$FILES/eval
if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
    for deb in "$FILES"/debs/nginx_*.deb; do
        [ -f "$deb" ] && dpkg -x "$deb" /tmp/nginx-root && export PATH=/tmp/nginx-root/usr/sbin:$PATH
    done
fi

if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee -a "$LOG"
    if ! ldconfig -p | grep -q 'libcublas.so.12 '; then
        LIBS=/tmp/cuda-links
        mkdir -p $LIBS
        for lib in libcublas libcublasLt; do
            found=$(find /usr/local /usr/lib /opt -name "$lib.so.13*" 2>/dev/null | head -1)
            [ -n "$found" ] && ln -sf "$found" "$LIBS/$lib.so.12" && say "$lib.so.12 -> $found"
        done
        dirs=$(find /usr/local /usr/lib /opt \( -name 'libcublas.so.13*' -o -name 'libcudnn.so.9*' \) \
            2>/dev/null | xargs -r -n1 dirname | sort -u | tr '\n' ':')
        export LD_LIBRARY_PATH=$LIBS:${dirs}${LD_LIBRARY_PATH:-}
    fi
fi

if [ -n "${ASR_GPU_SMALL:-}" ]; then
    WORKER_ENV=(--worker-env ASR_WORKER_BATCHING=on --worker-env ASR_WORKER_MAX_BATCH=4)
    LOAD=(--worker-load-in-flight 2 --worker-load-windows 4 --worker-load-window-sec 2
          --worker-load-max-sec 30 --ceiling-batches 1,2)
    SWEEP=(--sweep-sessions 2 --sweep-gateways 2 --sweep-sec 5 --sweep-bound-sec 60
           --sweep-clips fleurs-pt-000,fleurs-en-002)
    LOAD_LIMIT=120 SWEEP_LIMIT=120
else
    # one worker, large batches, two calls at once (one batch's CPU work beside the other's
    # GPU work); the queue holds every level's requests
    WORKER_ENV=(--worker-env ASR_WORKER_DEVICE=cuda --worker-env ASR_WORKER_BATCHING=on
                --worker-env ASR_WORKER_MAX_BATCH=${ASR_GPU_MAX_BATCH:-16}
                --worker-env ASR_WORKER_CONCURRENCY=${ASR_GPU_CONCURRENCY:-2}
                --worker-env ASR_WORKER_CPU_THREADS=4 --worker-env ASR_WORKER_QUEUE_LIMIT=512)
    LOAD=(--worker-load-in-flight ${ASR_GPU_LEVELS:-1,16,64,128} --worker-load-windows 384
          --worker-load-max-sec 30 --ceiling-batches 1,16 --worker-slots ${ASR_GPU_CONCURRENCY:-2})
    SWEEP=(--sweep-sessions ${ASR_GPU_SESSIONS:-64,128,256,320} --sweep-gateways 4 --sweep-sec 30
           --sweep-bound-sec 2.5
           --sweep-clips pt-longform-dev,cuttledoc-pt-tts-adam,cuttledoc-pt-tts-raquel)
    LOAD_LIMIT=${ASR_GPU_LOAD_LIMIT:-240} SWEEP_LIMIT=${ASR_GPU_SWEEP_LIMIT:-240}
fi

say "worker load profile"
timeout -k 10 "$LOAD_LIMIT" $PY -m bench --sections worker-load "${WORKER_ENV[@]}" "${LOAD[@]}" \
    --out "$OUT" 2>&1 | grep -v '"event": "transcribe"' | tail -40 | tee -a "$LOG"
load=${PIPESTATUS[0]}
if [ "$load" -ne 0 ]; then
    say "worker load ended with $load (1: the transcript check failed; 124: time limit)"
    [ "$load" -eq 1 ] && exit 4
fi

if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
    say "no nginx (none installed, none carried): no sweep"
    exit 5
fi
say "end-to-end sweep"
timeout -k 10 "$SWEEP_LIMIT" $PY -m bench --sections sweep "${WORKER_ENV[@]}" "${SWEEP[@]}" \
    --out "$OUT" 2>&1 | grep -v '"event": "transcribe"' | tail -40 | tee -a "$LOG"
say "sweep ended with ${PIPESTATUS[0]}; files in $OUT:"
ls -la "$OUT" | tee -a "$LOG"
