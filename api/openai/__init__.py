"""OpenAI's audio APIs on the gateway: error shape, model names, streamed file transcription and
the Realtime transcription session (docs/openai.md). Wire shapes follow the official `openai`
SDK; the Realtime session is one more front door to the gateway's session pipeline."""
