# syntax=docker/dockerfile:1
# The gateway (api/): WebSocket sessions, the file endpoint and the demo page. No model and no
# faster-whisper: it talks HTTP to the worker pool. Its one model is the Silero VAD (ONNX, run by
# onnxruntime), taken from the faster-whisper wheel at build time and checked by its SHA-256
# (api/vad_model.py); the wheel itself is not installed.
FROM python:3.11-slim-bookworm AS vad
ARG FASTER_WHISPER_VERSION=1.2.1
RUN pip download --no-deps --dest /tmp/fw "faster-whisper==${FASTER_WHISPER_VERSION}" \
    && python -c "import zipfile, glob; zipfile.ZipFile(glob.glob('/tmp/fw/*.whl')[0]).extract('faster_whisper/assets/silero_vad_v6.onnx', '/tmp/fw')" \
    && echo "4cbf549b8326f60f80f2536d9eefeb450a9abe83365a098031c89719f1be17d2  /tmp/fw/faster_whisper/assets/silero_vad_v6.onnx" | sha256sum -c -

FROM python:3.11-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY contracts ./contracts
COPY api ./api
RUN pip install ".[gateway]"
COPY --from=vad /tmp/fw/faster_whisper/assets/silero_vad_v6.onnx /app/vad/silero_vad_v6.onnx
COPY frontend ./frontend

RUN useradd --system --uid 10001 --home-dir /app asr
USER asr
ENV ASR_HOST=0.0.0.0 \
    ASR_PORT=8000 \
    ASR_FRONTEND_DIR=/app/frontend \
    ASR_VAD_MODEL_PATH=/app/vad/silero_vad_v6.onnx
EXPOSE 8000
CMD ["python", "-m", "api"]
