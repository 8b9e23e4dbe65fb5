// Microphone capture: getUserMedia → AudioWorklet (pcm-worklet.js) → 16 kHz PCM16 frames.

export const TARGET_RATE = 16000;

/** A capture failure with a code the page turns into a human message. */
export class CaptureError extends Error {
  constructor(code, detail = "") {
    super(detail || code);
    this.code = code; // insecure_context | mic_denied | mic_not_found | mic_busy | mic_failed
  }
}

export class MicCapture {
  /**
   * @param {{chunkMs: number, onFrame: (pcm: Int16Array) => void,
   *          onLevel?: (rms: number, peak: number) => void, onEnded?: () => void}} options
   */
  constructor({ chunkMs, onFrame, onLevel, onEnded }) {
    this.chunkMs = chunkMs;
    this.onFrame = onFrame;
    this.onLevel = onLevel || (() => {});
    this.onEnded = onEnded || (() => {});
    this.stream = null;
    this.context = null;
    this.node = null;
    this.inputRate = null;
    this._starting = null;
    this._flushed = null;
  }

  /** Open the microphone and the worklet; stop() waits for this to settle first. */
  start() {
    this._starting = this._start();
    return this._starting;
  }

  async _start() {
    if (!window.isSecureContext || !navigator.mediaDevices?.getUserMedia) {
      throw new CaptureError("insecure_context");
    }
    try {
      this.stream = await navigator.mediaDevices.getUserMedia({
        audio: {
          channelCount: 1,
          // raw audio: the model does better without the browser's call processing
          echoCancellation: false,
          noiseSuppression: false,
          autoGainControl: false,
        },
      });
    } catch (error) {
      throw new CaptureError(classify(error), error.message);
    }
    const track = this.stream.getAudioTracks()[0];
    track.addEventListener("ended", () => this.onEnded());
    const trackRate = track.getSettings().sampleRate;
    try {
      // same rate as the track where the browser says it: one resampling step, ours
      this.context = new AudioContext(
        trackRate ? { sampleRate: trackRate, latencyHint: "interactive" } : {}
      );
    } catch {
      this.context = new AudioContext();
    }
    this.inputRate = this.context.sampleRate;
    await this.context.audioWorklet.addModule(new URL("./pcm-worklet.js", import.meta.url));
    const source = this.context.createMediaStreamSource(this.stream);
    this.node = new AudioWorkletNode(this.context, "pcm-capture", {
      numberOfInputs: 1,
      numberOfOutputs: 1,
      outputChannelCount: [1],
      processorOptions: { targetRate: TARGET_RATE, chunkMs: this.chunkMs },
    });
    this.node.port.onmessage = (event) => this._onMessage(event.data);
    source.connect(this.node);
    this.node.connect(this.context.destination); // silent output keeps the node pulled
    if (this.context.state === "suspended") await this.context.resume();
  }

  _onMessage(message) {
    if (message.type === "frame") this.onFrame(new Int16Array(message.pcm));
    else if (message.type === "level") this.onLevel(message.rms, message.peak);
    else if (message.type === "flushed" && this._flushed) this._flushed();
  }

  /** Stop the microphone; resolves after the worklet has handed over its last frame. */
  async stop() {
    // a stop during start-up waits for it: closing a context mid-addModule can hang both
    if (this._starting) await withTimeout(this._starting.catch(() => {}), 3000);
    const { node, stream, context } = this;
    this.node = null;
    this.stream = null;
    this.context = null;
    if (node) {
      await withTimeout(
        new Promise((resolve) => {
          this._flushed = resolve;
          node.port.postMessage({ type: "flush" });
        }),
        1000
      );
      node.disconnect();
    }
    if (stream) for (const track of stream.getTracks()) track.stop();
    if (context && context.state !== "closed") await withTimeout(context.close(), 2000);
  }
}

function withTimeout(promise, ms) {
  return Promise.race([promise, new Promise((resolve) => setTimeout(resolve, ms))]);
}

function classify(error) {
  switch (error?.name) {
    case "NotAllowedError":
    case "SecurityError":
      return "mic_denied";
    case "NotFoundError":
    case "OverconstrainedError":
      return "mic_not_found";
    case "NotReadableError":
    case "AbortError":
      return "mic_busy";
    default:
      return "mic_failed";
  }
}
