// AudioWorklet: microphone → mono → 16 kHz (band-limited) → PCM16 frames of `chunkMs`.
//
// Runs on the audio rendering thread, so the page's main thread only forwards finished frames
// to the WebSocket. Messages to the page: {type: "frame", pcm: ArrayBuffer (Int16, 16 kHz)},
// {type: "level", rms, peak} about 20 times a second, and {type: "flushed"} after a flush.
import { Resampler } from "./resampler.js";

const LEVEL_INTERVAL_SEC = 0.05;

class PcmCaptureProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const { targetRate = 16000, chunkMs = 300 } = options.processorOptions || {};
    // `sampleRate` is the AudioContext's rate (a global of the worklet scope)
    this.resampler = new Resampler(sampleRate, targetRate);
    this.frameSamples = Math.max(1, Math.round((targetRate * chunkMs) / 1000));
    this.frame = new Int16Array(this.frameSamples);
    this.filled = 0;
    this.levelEvery = Math.round(sampleRate * LEVEL_INTERVAL_SEC);
    this.levelCount = 0;
    this.levelSum = 0;
    this.levelPeak = 0;
    this.running = true;
    this.port.onmessage = (event) => {
      if (event.data && event.data.type === "flush") this.flush();
    };
  }

  process(inputs) {
    if (!this.running) return false;
    const channels = inputs[0];
    if (channels && channels.length > 0 && channels[0].length > 0) {
      const mono = this.mixDown(channels);
      this.meter(mono);
      this.push(this.resampler.process(mono));
    }
    return true;
  }

  mixDown(channels) {
    if (channels.length === 1) return channels[0];
    const out = new Float32Array(channels[0].length);
    for (const channel of channels) {
      for (let i = 0; i < out.length; i++) out[i] += channel[i];
    }
    const scale = 1 / channels.length;
    for (let i = 0; i < out.length; i++) out[i] *= scale;
    return out;
  }

  meter(samples) {
    for (let i = 0; i < samples.length; i++) {
      const v = samples[i];
      this.levelSum += v * v;
      const a = v < 0 ? -v : v;
      if (a > this.levelPeak) this.levelPeak = a;
    }
    this.levelCount += samples.length;
    if (this.levelCount >= this.levelEvery) {
      const rms = Math.sqrt(this.levelSum / this.levelCount);
      this.port.postMessage({ type: "level", rms, peak: this.levelPeak });
      this.levelCount = 0;
      this.levelSum = 0;
      this.levelPeak = 0;
    }
  }

  push(samples) {
    for (let i = 0; i < samples.length; i++) {
      const v = samples[i] < -1 ? -1 : samples[i] > 1 ? 1 : samples[i];
      this.frame[this.filled++] = v < 0 ? Math.round(v * 32768) : Math.round(v * 32767);
      if (this.filled === this.frameSamples) this.emit();
    }
  }

  emit() {
    const pcm = this.filled === this.frame.length ? this.frame : this.frame.slice(0, this.filled);
    this.port.postMessage({ type: "frame", pcm: pcm.buffer }, [pcm.buffer]);
    this.frame = new Int16Array(this.frameSamples);
    this.filled = 0;
  }

  flush() {
    this.push(this.resampler.flush());
    if (this.filled > 0) this.emit();
    this.running = false;
    this.port.postMessage({ type: "flushed" });
  }
}

registerProcessor("pcm-capture", PcmCaptureProcessor);
