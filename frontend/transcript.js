// The transcript on screen: final words rendered one by one, the partial tail, and exports.
//
// Each `transcript` event's words appear WORD_DELAY_MS apart, but one transcript never takes
// more than MAX_SPREAD_MS to appear, and a new transcript first completes the previous one, so
// long transcripts or a burst of them never make the text lag behind the server.

export const WORD_DELAY_MS = 50;
export const MAX_SPREAD_MS = 300;
const PARAGRAPH_GAP_SEC = 2.0;

export class TranscriptView {
  /** @param {HTMLElement} root holds `.transcript-final` and `.transcript-partial` */
  constructor(root, { onChange } = {}) {
    this.root = root;
    this.finalEl = root.querySelector(".transcript-final");
    this.partialEl = root.querySelector(".transcript-partial");
    this.onChange = onChange || (() => {});
    this.segments = []; // {start, end, text, paragraph} on the document timeline (seconds)
    this.queue = []; // words waiting to be shown: {word, parent, due}
    this.timer = null;
    this.wordCount = 0;
    this.paragraph = null;
    this.paragraphIndex = -1;
    this.timeBase = 0;
    this.breakPending = false;
  }

  /** A new recording: times continue after what is already there, in a new paragraph. */
  beginRecording() {
    this.flush();
    const last = this.segments[this.segments.length - 1];
    this.timeBase = last ? last.end + 1 : 0;
    this.breakPending = true;
  }

  /** A `transcript` event (times on the recording's timeline). */
  addTranscript(event) {
    this.setPartial("");
    const words = (event.words?.length ? event.words.map((w) => w.word) : event.text.split(/\s+/))
      .map((w) => w.trim())
      .filter(Boolean);
    if (words.length === 0) return;
    this.flush(); // the previous transcript completes at once
    const start = this.timeBase + event.start;
    const previous = this.segments[this.segments.length - 1];
    if (this.breakPending || (previous && start - previous.end > PARAGRAPH_GAP_SEC)) {
      this._newParagraph();
    }
    const segment = {
      start,
      end: this.timeBase + event.end,
      text: words.join(" "),
      paragraph: this.paragraphIndex,
    };
    this.segments.push(segment);
    const parent = document.createElement("span");
    parent.className = "segment";
    parent.title = `${formatClock(segment.start)} – ${formatClock(segment.end)}`;
    this.paragraph.append(parent);
    // word i is due at i * delay: late timers catch up instead of stretching the transcript
    const delay = Math.min(WORD_DELAY_MS, MAX_SPREAD_MS / words.length);
    const now = performance.now();
    words.forEach((word, i) => this.queue.push({ word, parent, due: now + i * delay }));
    this._tick();
  }

  /** The speaker paused: the next text starts a new paragraph. */
  utteranceEnd() {
    if (this.segments.length) this.breakPending = true;
  }

  /** The whole uncommitted tail (it replaces the previous partial). */
  setPartial(text) {
    const clean = (text || "").trim();
    this.partialEl.textContent = clean;
    this.partialEl.hidden = clean === "";
    this.root.classList.toggle("has-text", this.wordCount > 0 || clean !== "");
    if (clean) this._scroll();
  }

  /** Show a file's segments at once (the upload result). */
  load(segments) {
    this.clear();
    this.breakPending = true;
    for (const seg of segments) {
      const text = (seg.text || "").trim();
      if (!text) continue;
      this.addTranscript({ start: seg.start, end: seg.end, text, words: [] });
      this.flush();
    }
  }

  /** Show every queued word now. */
  flush() {
    clearTimeout(this.timer);
    this.timer = null;
    while (this.queue.length) this._show(this.queue.shift());
  }

  clear() {
    this.flush();
    this.segments = [];
    this.finalEl.replaceChildren();
    this.paragraph = null;
    this.paragraphIndex = -1;
    this.wordCount = 0;
    this.timeBase = 0;
    this.breakPending = false;
    this.setPartial("");
    this._changed();
  }

  isEmpty() {
    return this.segments.length === 0;
  }

  text() {
    const paragraphs = [];
    for (const seg of this.segments) {
      paragraphs[seg.paragraph] = paragraphs[seg.paragraph]
        ? `${paragraphs[seg.paragraph]} ${seg.text}`
        : seg.text;
    }
    return paragraphs.filter(Boolean).join("\n\n");
  }

  srt() {
    return this.segments
      .map(
        (seg, i) =>
          `${i + 1}\n${formatClock(seg.start, ",")} --> ${formatClock(seg.end, ",")}\n${seg.text}\n`
      )
      .join("\n");
  }

  // ---- internals ----------------------------------------------------------------------------

  _newParagraph() {
    this.paragraph = document.createElement("p");
    this.paragraphIndex += 1;
    this.finalEl.append(this.paragraph);
    this.breakPending = false;
  }

  _tick() {
    if (this.timer !== null) return;
    const now = performance.now();
    while (this.queue.length && this.queue[0].due <= now) this._show(this.queue.shift());
    if (this.queue.length) {
      this.timer = setTimeout(() => {
        this.timer = null;
        this._tick();
      }, Math.max(0, this.queue[0].due - now));
    }
  }

  _show({ word, parent }) {
    if (parent.childNodes.length || parent.previousSibling) parent.append(" ");
    const span = document.createElement("span");
    span.className = "word";
    span.textContent = word;
    parent.append(span);
    this.wordCount += 1;
    this._changed();
    this._scroll();
  }

  _changed() {
    this.root.dataset.words = String(this.wordCount);
    this.root.classList.toggle("has-text", this.wordCount > 0 || !this.partialEl.hidden);
    this.onChange(this);
  }

  _scroll() {
    const box = this.root;
    if (box.scrollHeight - box.scrollTop - box.clientHeight < 80) {
      box.scrollTop = box.scrollHeight;
    }
  }
}

export function formatClock(seconds, decimal = ".") {
  let millis = Math.round(Math.max(0, seconds) * 1000);
  const hours = Math.floor(millis / 3600000);
  millis -= hours * 3600000;
  const minutes = Math.floor(millis / 60000);
  millis -= minutes * 60000;
  const secs = Math.floor(millis / 1000);
  millis -= secs * 1000;
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  return `${pad(hours)}:${pad(minutes)}:${pad(secs)}${decimal}${pad(millis, 3)}`;
}
