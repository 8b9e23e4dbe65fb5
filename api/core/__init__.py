"""The session core: every decision of a live session as plain synchronous code, fed with
audio levels, VAD scores, worker responses and the clock, returning requests and events. The
async shells (api/session.py, api/modes.py, api/connection.py) only move bytes."""
