"""ASR worker: a stateless faster-whisper service (audio window + options in, segments out)."""
