// One live transcription over `WS /ws/transcribe` (docs/protocol.md): start, audio, stop with
// flush, and automatic reconnection with backoff.
//
// Offsets are 16 kHz samples on the recording's timeline. Audio is kept until the server
// reports it committed (ack.committed_offset). After a lost connection the client first asks
// to resume its session (the gateway parks a dropped session for a while); a gateway that does
// not know it (restarted) gets a new session continuing the timeline (timeline_offset) and the
// audio from the committed offset on, preceded by up to CONTEXT_SEC already transcribed
// (context_samples, from a word's start): the model hears the new session's first words as the
// lost session would have. Nothing captured is lost, up to MAX_PENDING_SEC of it.

const RATE = 16000;
const BACKOFF_MS = [500, 1000, 2000, 4000, 8000];
const MAX_PENDING_SEC = 120;
const CONTEXT_SEC = 5; // as the gateway's default context_sec: committed audio kept as context
const END_TIMEOUT_MS = 120000;
const FIRST_CONNECT_ATTEMPTS = 4;
// errors after which reconnecting cannot help
const FATAL_CODES = new Set(["unauthorized", "forbidden_origin", "frame_too_large", "invalid_config"]);
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/; // RFC 6455 subprotocol token characters

export function streamUrl(base = window.location) {
  const scheme = base.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${base.host}/ws/transcribe`;
}

export class StreamClient {
  /**
   * @param {{url: string, startPayload: () => object, apiKey?: string,
   *          onEvent: (event: object) => void,
   *          onState: (state: string, info?: object) => void}} options
   * States: connecting, live, reconnecting, finishing, closed, failed.
   */
  constructor({ url, startPayload, apiKey, onEvent, onState }) {
    this.url = url;
    this.startPayload = startPayload;
    this.apiKey = (apiKey || "").trim();
    this.onEvent = onEvent;
    this.onState = onState;
    this.state = "idle";
    this.ws = null;
    this.ready = false;
    this.everReady = false;
    this.attempt = 0;
    this.retryTimer = null;
    this.retryAfterMs = null;
    this.lastError = null;
    this.fatal = null; // the error event (or local {code}) that ended the stream
    this.pending = []; // {pcm: Int16Array, start: offset}: uncommitted, and CONTEXT_SEC before
    this.captured = 0; // offset after the last captured sample
    this.committed = 0; // the server's committed offset
    this.sentUpTo = 0; // what the current connection has sent
    this.freshFrom = 0; // where a new session's timeline starts
    this.sendFrom = 0; // where a new session's audio starts (its context first)
    this.wordStarts = []; // offsets of the words received lately (for a new session's context)
    this.droppedSamples = 0;
    this.sessionId = null; // of the session to resume after a drop
    this.lastSegmentId = -1;
    this.stopRequested = false;
    this.gotEnd = false;
    this._stopped = null; // resolve() of the stop() promise
  }

  connect() {
    if (this.apiKey && !TOKEN.test(this.apiKey)) {
      this._fail({ code: "bad_key" });
      return;
    }
    this._setState("connecting");
    this._open();
  }

  /** Queue one frame of 16 kHz PCM16; sent at once while the session is live. */
  addAudio(pcm) {
    if (this.state === "closed" || this.state === "failed") return;
    this.pending.push({ pcm, start: this.captured });
    this.captured += pcm.length;
    while (this.captured - this.pending[0].start > MAX_PENDING_SEC * RATE) {
      const dropped = this.pending.shift(); // the connection has been down too long
      this.droppedSamples += dropped.pcm.length;
    }
    this._sendPending();
  }

  /** Flush: the server transcribes everything sent, answers `end`; resolves with it (or null). */
  stop() {
    if (this.state === "closed" || this.state === "failed") return Promise.resolve(null);
    this.stopRequested = true;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.fatal = { code: "end_timeout" };
        this.abort();
      }, END_TIMEOUT_MS);
      this._stopped = (end) => {
        clearTimeout(timer);
        resolve(end);
      };
      if (this.ready) this._sendStop();
    });
  }

  /** Close now, without waiting for the last transcripts. */
  abort() {
    clearTimeout(this.retryTimer);
    this.stopRequested = true;
    if (this.ws) this.ws.close(1000);
    this._finish(this.fatal ? "failed" : "closed", null);
  }

  // ---- internals ----------------------------------------------------------------------------

  _open() {
    this.ready = false;
    this.gotEnd = false;
    this.retryAfterMs = null;
    this.lastError = null;
    let ws;
    try {
      ws = this.apiKey
        ? new WebSocket(this.url, ["asr.v1", `bearer.${this.apiKey}`])
        : new WebSocket(this.url);
    } catch {
      this._fail({ code: "connect_failed" });
      return;
    }
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    ws.onopen = () => this._sendStart(this.sessionId !== null);
    ws.onmessage = (message) => {
      if (ws === this.ws && typeof message.data === "string") this._onMessage(message.data);
    };
    ws.onclose = (event) => {
      if (ws === this.ws) this._onClose(event);
    };
  }

  _sendStart(resume) {
    const start = { event: "start", ...this.startPayload() };
    if (resume) {
      start.resume = {
        session_id: this.sessionId,
        offset: this.committed,
        last_segment_id: this.lastSegmentId,
      };
    } else {
      this.sessionId = null;
      this.lastSegmentId = -1;
      // audio dropped while the connection was down leaves a gap the timeline skips
      this.freshFrom = Math.max(this.committed, this.pending[0]?.start ?? this.committed);
      if (this.freshFrom > 0) start.timeline_offset = this.freshFrom;
      this.sendFrom = this._contextStart();
      if (this.sendFrom < this.freshFrom) {
        start.context_samples = this.freshFrom - this.sendFrom;
        start.context_word_starts = this.wordStarts.filter(
          (s) => s >= this.sendFrom && s < this.freshFrom,
        );
      }
    }
    this.ws.send(JSON.stringify(start));
  }

  /** As the gateway picks a window's context: from the first word that began in the last
   *  CONTEXT_SEC before the new timeline, 0.1 s early, within the audio still kept. */
  _contextStart() {
    const kept = this.pending[0]?.start ?? this.freshFrom;
    const floor = Math.max(this.freshFrom - CONTEXT_SEC * RATE, kept);
    const first = this.wordStarts.find((s) => s >= floor && s < this.freshFrom);
    return first === undefined ? this.freshFrom : Math.max(first - RATE / 10, kept);
  }

  _onMessage(raw) {
    let event;
    try {
      event = JSON.parse(raw);
    } catch {
      return;
    }
    switch (event.event) {
      case "ready":
        this.ready = true;
        this.everReady = true;
        this.attempt = 0;
        this.sessionId = event.session_id;
        // a resumed session already holds audio up to its received_offset
        this.sentUpTo = event.resumed ? event.received_offset : this.sendFrom;
        this._commit(event.committed_offset || 0);
        this._setState(this.stopRequested ? "finishing" : "live");
        break;
      case "ack":
        this._commit(event.committed_offset);
        break;
      case "transcript":
        if (event.segment_id <= this.lastSegmentId) return; // already shown
        this.lastSegmentId = event.segment_id;
        for (const word of event.words || []) this.wordStarts.push(Math.round(word.start * RATE));
        break;
      case "error":
        this.lastError = event;
        if (event.code === "resume_unknown") {
          this._sendStart(false); // the gateway restarted: a new session, same timeline
          return;
        }
        if (event.code === "busy" && event.retry_after_sec) {
          this.retryAfterMs = event.retry_after_sec * 1000;
        }
        break;
      case "end":
        this.gotEnd = true;
        this.sessionId = null; // finished: nothing to resume
        this._commit(Math.floor((event.summary?.transcribed_sec ?? 0) * RATE));
        break;
      default:
        break;
    }
    this.onEvent(event);
    if (event.event === "error" && FATAL_CODES.has(event.code)) {
      this._fail(event);
    } else if (event.event === "ready") {
      this._sendPending();
      if (this.stopRequested) this._sendStop();
    } else if (event.event === "end" && this.stopRequested) {
      this._finish("closed", event);
    }
  }

  _commit(offset) {
    this.committed = Math.max(this.committed, offset);
    const keepFrom = this.committed - CONTEXT_SEC * RATE; // context for a new session
    while (this.pending.length) {
      const first = this.pending[0];
      if (first.start + first.pcm.length > keepFrom) break;
      this.pending.shift();
    }
    const kept = this.pending[0]?.start ?? this.committed;
    while (this.wordStarts.length && this.wordStarts[0] < kept) this.wordStarts.shift();
  }

  _sendPending() {
    if (!this.ready || this.ws?.readyState !== WebSocket.OPEN || this.gotEnd) return;
    for (const { pcm, start } of this.pending) {
      const end = start + pcm.length;
      if (end <= this.sentUpTo) continue;
      this.ws.send(start >= this.sentUpTo ? pcm : pcm.subarray(this.sentUpTo - start));
      this.sentUpTo = end;
    }
  }

  _sendStop() {
    this._sendPending();
    if (this.ws?.readyState === WebSocket.OPEN && !this.gotEnd) {
      this.ws.send(JSON.stringify({ event: "stop" }));
      this._setState("finishing");
    }
  }

  _onClose(event) {
    this.ready = false;
    if (this.state === "closed" || this.state === "failed") return;
    if (this.fatal) {
      this._fail(this.fatal);
      return;
    }
    if (event.code === 1008 && this.lastError?.code !== "slow_consumer") {
      this._fail(this.lastError || { code: "unauthorized" }); // a refused key or origin
      return;
    }
    if (event.code === 1009) {
      this._fail({ code: "frame_too_large" });
      return;
    }
    if (!this.everReady && this.attempt + 1 >= FIRST_CONNECT_ATTEMPTS) {
      this._fail({ code: "connect_failed" });
      return;
    }
    // a lost connection, a restarted gateway, `busy`, or an `end` we did not ask for
    const base = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)];
    const delay = this.gotEnd ? 0 : this.retryAfterMs ?? Math.round(base * (0.8 + 0.4 * Math.random()));
    this.attempt += 1;
    this._setState("reconnecting", { attempt: this.attempt, delayMs: delay });
    this.retryTimer = setTimeout(() => this._open(), delay);
  }

  _fail(error) {
    this.fatal = error;
    if (this.ws && this.ws.readyState <= WebSocket.OPEN) this.ws.close(1000);
    this._finish("failed", null);
  }

  _finish(state, end) {
    clearTimeout(this.retryTimer);
    this._setState(state, { error: this.fatal, droppedSec: this.droppedSamples / RATE });
    if (this._stopped) {
      const resolve = this._stopped;
      this._stopped = null;
      resolve(end);
    }
  }

  _setState(state, info = {}) {
    if (this.state === state && state !== "reconnecting") return;
    this.state = state;
    this.onState(state, info);
  }
}
