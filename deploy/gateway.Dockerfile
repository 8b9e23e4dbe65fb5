# syntax=docker/dockerfile:1
# The gateway (api/): WebSocket sessions, the file endpoint and the demo page. The same image
# renders nginx/nginx.conf for compose (`python -m api.nginx_config`, service nginx-config).
FROM python:3.11-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
# the gateway imports asr's audio helpers and schemas (pure Python, no model)
COPY asr ./asr
COPY api ./api
RUN pip install ".[gateway]"
COPY frontend ./frontend
COPY nginx ./nginx

RUN useradd --system --uid 10001 --home-dir /app asr
USER asr
ENV ASR_HOST=0.0.0.0 \
    ASR_PORT=8000 \
    ASR_FRONTEND_DIR=/app/frontend
EXPOSE 8000
CMD ["python", "-m", "api"]
