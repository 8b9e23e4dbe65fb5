"""Gateway: WebSocket sessions, batch windows, file transcription; fans out to ASR workers."""
