// Band-limited sample-rate conversion (Kaiser-windowed sinc, tabulated), for the audio worklet.
//
// Dropping samples (taking every 3rd of 48 kHz) folds everything between 8 and 24 kHz into the
// speech band, and that noise costs real WER. Here every output sample is the input convolved
// with a low-pass kernel whose cutoff sits below the output Nyquist frequency, evaluated at the
// output sample's exact (fractional) position, so 44.1 kHz works as well as 48 kHz.
//
// Streaming: feed blocks of any size; the resampler keeps the history the kernel needs, so
// block edges do not click. Pure JS, no Web Audio API: it runs in a worklet or in a page.

function besselI0(x) {
  // power series of the zeroth-order modified Bessel function (converges fast for x < 30)
  let sum = 1;
  let term = 1;
  const half = x / 2;
  for (let k = 1; k < 50; k++) {
    term *= (half / k) * (half / k);
    sum += term;
    if (term < sum * 1e-12) break;
  }
  return sum;
}

export class Resampler {
  /**
   * @param {number} inRate input sample rate (Hz)
   * @param {number} outRate output sample rate (Hz)
   * @param {{zeroCrossings?: number, rolloff?: number, beta?: number, oversample?: number}} options
   *   zeroCrossings: kernel half-length in zero crossings (steeper transition when larger);
   *   rolloff: cutoff as a fraction of the lower Nyquist frequency; beta: Kaiser window shape
   *   (8 gives about 80 dB of stopband attenuation); oversample: table points per input sample.
   */
  constructor(inRate, outRate, options = {}) {
    const { zeroCrossings = 24, rolloff = 0.9, beta = 8, oversample = 512 } = options;
    this.inRate = inRate;
    this.outRate = outRate;
    this.step = inRate / outRate; // input samples per output sample
    this.passthrough = inRate === outRate;
    const cutoff = 0.5 * Math.min(1, outRate / inRate) * rolloff; // cycles per input sample
    this.half = Math.ceil(zeroCrossings / (2 * cutoff)); // kernel half-width, input samples
    this.oversample = oversample;
    const size = this.half * oversample + 2;
    this.table = new Float32Array(size);
    const i0beta = besselI0(beta);
    for (let i = 0; i < size; i++) {
      const t = i / oversample; // distance from the kernel centre, in input samples
      const x = 2 * cutoff * t;
      const sinc = x === 0 ? 1 : Math.sin(Math.PI * x) / (Math.PI * x);
      const r = t / this.half;
      const window = r >= 1 ? 0 : besselI0(beta * Math.sqrt(1 - r * r)) / i0beta;
      this.table[i] = 2 * cutoff * sinc * window; // unit gain at DC
    }
    // history: `half` zeros, so output 0 sits on input sample 0
    this.buffer = new Float32Array(4096);
    this.length = this.half;
    this.position = this.half; // of the next output sample, in buffer coordinates
    this.consumed = 0; // input samples fed so far
    this.produced = 0; // output samples returned so far
  }

  /** Resample one block; returns the output samples it completes (possibly none). */
  process(input) {
    this.consumed += input.length;
    if (this.passthrough) {
      this.produced += input.length;
      return Float32Array.from(input);
    }
    this._append(input);
    return this._drain(this.length);
  }

  /** The last samples still inside the kernel's reach (call once, at the end of the stream). */
  flush() {
    if (this.passthrough) return new Float32Array(0);
    const expected = Math.floor(this.consumed / this.step);
    this._append(new Float32Array(this.half + Math.ceil(this.step) + 1));
    const out = this._drain(this.length);
    return out.subarray(0, Math.max(0, Math.min(out.length, expected - (this.produced - out.length))));
  }

  _append(input) {
    if (this.length + input.length > this.buffer.length) {
      const grown = new Float32Array(Math.max(this.buffer.length * 2, this.length + input.length));
      grown.set(this.buffer.subarray(0, this.length));
      this.buffer = grown;
    }
    this.buffer.set(input, this.length);
    this.length += input.length;
  }

  _drain(available) {
    const { buffer, table, half, oversample, step } = this;
    const count = Math.max(0, Math.ceil((available - half - this.position) / step));
    const out = new Float32Array(count);
    let produced = 0;
    let position = this.position;
    while (Math.floor(position) + half < available && produced < count) {
      const centre = Math.floor(position);
      let acc = 0;
      for (let k = centre - half + 1; k <= centre + half; k++) {
        const t = Math.abs(position - k) * oversample;
        const i = t | 0;
        const weight = table[i] + (t - i) * (table[i + 1] - table[i]);
        acc += buffer[k] * weight;
      }
      out[produced++] = acc;
      position += step;
    }
    // drop the input no later output sample can reach
    const keepFrom = Math.max(0, Math.floor(position) - half + 1);
    buffer.copyWithin(0, keepFrom, this.length);
    this.length -= keepFrom;
    this.position = position - keepFrom;
    this.produced += produced;
    return out.subarray(0, produced);
  }
}
