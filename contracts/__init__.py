"""What the gateway (`api/`), the workers (`asr/`), the client and the benchmark agree on.

The one package they all import, so it stays small and light: pydantic, numpy, structlog and the
standard library only (a unit test holds it to that). Neither service imports the other.

- `audio`: the internal audio format (16 kHz mono PCM16) and its conversions
- `worker`: the gateway <-> worker request and response models and their one form codec
- `events`: the client <-> gateway protocol, version 1 (messages, events, error codes)
- `languages`: whisper's language codes, the allow-list and its check
- `words`: word keys, looping-tail detection, shifting word times onto a timeline
- `logs`: structured JSON logging with API keys redacted
- `version`, `process`, `body_limit`: the package version, malloc settings, upload limits
"""
