"""Python client of the gateway: an async streaming session and the HTTP file endpoint."""

from client.files import transcribe_file
from client.session import StreamingSession, connect

__all__ = ["StreamingSession", "connect", "transcribe_file"]
