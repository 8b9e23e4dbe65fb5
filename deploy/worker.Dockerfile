# syntax=docker/dockerfile:1
# faster-whisper worker (asr/) on the CUDA runtime. ctranslate2 4.x wheels (>= 4.5) are built
# against CUDA 12 and cuDNN 9, which is what this base image carries; the NVIDIA driver comes
# from the host (nvidia-container-toolkit). Also runs deploy/fetch_model.py (model-fetch).
ARG CUDA_IMAGE=nvidia/cuda:12.3.2-cudnn9-runtime-ubuntu22.04
FROM ${CUDA_IMAGE}

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# the project needs Python >= 3.11; Ubuntu 22.04 ships it beside its 3.10
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3.11 python3.11-venv ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && python3.11 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /app
COPY pyproject.toml README.md ./
COPY contracts ./contracts
COPY asr ./asr
RUN pip install ".[worker]"
COPY deploy/fetch_model.py ./deploy/fetch_model.py

# the shared model cache is a volume mounted here; a fresh volume takes this owner
RUN useradd --system --uid 10001 --home-dir /app asr && mkdir -p /models && chown asr /models
USER asr
ENV ASR_WORKER_HOST=0.0.0.0 \
    ASR_WORKER_PORT=8001 \
    ASR_WORKER_MODELS_DIR=/models
EXPOSE 8001
CMD ["python", "-m", "asr"]
