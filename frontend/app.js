// The demo page: wires the microphone, the WebSocket session, the transcript and the panels.
import { CaptureError, MicCapture, TARGET_RATE } from "./capture.js";
import { StreamClient, streamUrl } from "./connection.js";
import { FileTools } from "./files.js";
import { getLocale, num, setLocale, t } from "./i18n.js";
import { errorValues, Panels } from "./panels.js";
import { TranscriptView } from "./transcript.js";

// "stream" (the default): the gateway's stream mode, its measured best live configuration
// (docs/benchmarks.md). The reference's profiles: the window goes out as batch_window_sec,
// beam/best_of via `profile`.
const STREAM = "stream";
const PROFILE_WINDOW_SEC = { max_quality: 5.0, balanced: 2.0, responsive: 1.5, ultra_fast: 1.0 };
const MAX_BATCH_WINDOW_SEC = 10.0;
const DEFAULT_CHUNK_MS = 300;
const SILENT_MIC_MS = 3000;
const SAVED = ["profile", "language", "chunk", "provider"];

const $ = (id) => document.getElementById(id);
const el = {
  status: $("status"),
  statusText: $("status-text"),
  record: $("record"),
  recordLabel: $("record-label"),
  level: $("level"),
  timer: $("timer"),
  summary: $("summary"),
  settings: $("settings"),
  profile: $("profile"),
  language: $("language"),
  chunk: $("chunk"),
  insights: $("insights"),
  provider: $("provider"),
  apiKey: $("apikey"),
};

const panels = new Panels();
const view = new TranscriptView($("transcript"), { onChange: () => files.render() });
const files = new FileTools({
  view,
  panels,
  apiKey: () => el.apiKey.value.trim(),
  language: () => el.language.value,
  recording: () => run !== null,
  onBusy: () => renderRecordButton(),
});
let run = null; // the recording in progress: {client, capture, startedAt, stopping, ...}
let status = { state: "idle", info: {} };
let summary = null; // {audio, words} of the last recording

// ---- live session ------------------------------------------------------------------------------

function startPayload() {
  const common = {
    enable_insights: el.insights.checked,
    provider: el.provider.value.trim() || "local",
    sample_rate: TARGET_RATE,
    encoding: "pcm_s16le",
  };
  const profile = el.profile.value;
  const payload =
    profile in PROFILE_WINDOW_SEC
      ? {
          batch_window_sec: PROFILE_WINDOW_SEC[profile],
          max_batch_window_sec: MAX_BATCH_WINDOW_SEC,
          ...common,
          profile,
        }
      : { mode: STREAM, ...common };
  if (el.language.value) payload.language = el.language.value;
  return payload;
}

function chunkMs() {
  const value = Math.round(Number(el.chunk.value));
  const clamped = Number.isFinite(value) && value > 0 ? Math.min(2000, Math.max(20, value)) : DEFAULT_CHUNK_MS;
  el.chunk.value = String(clamped);
  return clamped;
}

async function startRecording() {
  if (run || files.uploading) return;
  summary = null;
  renderSummary();
  panels.reset();
  view.beginRecording();
  const client = new StreamClient({
    url: streamUrl(),
    apiKey: el.apiKey.value,
    startPayload,
    onEvent,
    onState,
  });
  const current = { client, startedAt: performance.now(), stopping: false, timer: 0, words: 0, frames: 0 };
  current.capture = new MicCapture({
    chunkMs: chunkMs(),
    onFrame: (pcm) => {
      current.frames += 1;
      client.addAudio(pcm);
    },
    onLevel: renderLevel,
    onEnded: () => stopRecording(),
  });
  run = current;
  setState("connecting");
  client.connect();
  try {
    await current.capture.start();
  } catch (error) {
    panels.showAlert(error instanceof CaptureError ? error.code : "mic_failed", {
      message: error.message,
    });
    client.abort();
    endRun(current);
    setState("idle");
    return;
  }
  if (run !== current) {
    await current.capture.stop(); // the connection failed while the microphone was opening
    return;
  }
  current.timer = setInterval(renderTimer, 250);
  setTimeout(() => {
    if (run === current && current.frames === 0) {
      current.capture.context?.resume();
      panels.showAlert("mic_silent");
    }
  }, SILENT_MIC_MS);
}

async function stopRecording() {
  const current = run;
  if (!current || current.stopping) return;
  current.stopping = true;
  renderRecordButton();
  await current.capture.stop(); // its last frame reaches the client first
  const end = await current.client.stop();
  if (end) summary = { audio: panels.audioSec, words: current.words };
  endRun(current);
  renderSummary();
}

function endRun(current) {
  clearInterval(current.timer);
  if (run === current) run = null;
  view.flush();
  view.setPartial("");
  renderLevel(0);
  renderRecordButton();
  files.render();
}

function onState(state, info = {}) {
  setState(state, info);
  if (state === "failed" && run) {
    // errors the server sent are already shown; local ones (connect_failed, ...) are not
    if (info.error && !info.error.event) panels.showAlert(info.error.code, info.error);
    const current = run;
    endRun(current); // the page is ready for another try at once
    current.capture.stop(); // the microphone closes in the background
  }
  if (state === "closed" && info.droppedSec > 0) {
    panels.showAlert("audio_dropped", { sec: num(info.droppedSec) });
  }
}

function onEvent(event) {
  switch (event.event) {
    case "ready":
      panels.showReady(event);
      break;
    case "ack":
      panels.setAudio(event.received_offset / TARGET_RATE);
      break;
    case "transcript":
      view.addTranscript(event);
      if (run) run.words += event.words?.length || 0;
      panels.addLatency(event.timing?.batch_ms);
      break;
    case "partial":
      view.setPartial(event.text);
      break;
    case "utterance_end":
      view.utteranceEnd();
      break;
    case "insights":
      panels.addInsight(event);
      break;
    case "error":
      panels.showAlert(event.code, errorValues(event));
      break;
    case "end":
      panels.setAudio(event.summary?.audio_sec ?? 0);
      break;
    default:
      break;
  }
}

// ---- rendering ---------------------------------------------------------------------------------

function setState(state, info = {}) {
  status = { state, info };
  renderStatus();
  renderRecordButton();
}

function renderStatus() {
  const { state, info } = status;
  el.status.dataset.state = state;
  el.statusText.textContent =
    state === "reconnecting" && info.attempt > 1
      ? t("state.reconnecting_n", { n: info.attempt })
      : t(`state.${state}`);
}

function renderRecordButton() {
  const active = run !== null;
  const stopping = active && run.stopping;
  el.record.classList.toggle("recording", active && !stopping);
  // aria-disabled, not disabled: the button keeps keyboard focus while the session finishes
  el.record.setAttribute("aria-disabled", String(stopping || files.uploading));
  el.recordLabel.textContent = t(stopping ? "record.finishing" : active ? "record.stop" : "record.start");
  el.settings.disabled = active;
  files.render();
}

function renderTimer() {
  if (!run) return;
  const seconds = Math.floor((performance.now() - run.startedAt) / 1000);
  const pad = (n) => String(n).padStart(2, "0");
  el.timer.textContent = `${pad(Math.floor(seconds / 60))}:${pad(seconds % 60)}`;
}

function renderLevel(rms) {
  const db = rms > 0 ? 20 * Math.log10(rms) : -100;
  const fraction = Math.min(1, Math.max(0, (db + 60) / 54));
  el.level.style.transform = `scaleX(${fraction.toFixed(3)})`;
}

function renderSummary() {
  el.summary.textContent = summary
    ? t("summary.done", { audio: num(summary.audio), words: summary.words })
    : "";
}

// ---- settings and start-up ---------------------------------------------------------------------

function restoreSettings() {
  try {
    const saved = JSON.parse(localStorage.getItem("asr.settings") || "{}");
    for (const name of SAVED) if (typeof saved[name] === "string") el[name].value = saved[name];
    if (!el.profile.value) el.profile.value = STREAM;
    el.insights.checked = saved.insights === true;
    el.apiKey.value = sessionStorage.getItem("asr.apiKey") || "";
  } catch {
    // storage unavailable (private mode): the defaults
  }
}

function saveSettings() {
  try {
    const values = Object.fromEntries(SAVED.map((name) => [name, el[name].value]));
    localStorage.setItem("asr.settings", JSON.stringify({ ...values, insights: el.insights.checked }));
    sessionStorage.setItem("asr.apiKey", el.apiKey.value.trim());
  } catch {
    // storage unavailable: nothing is kept
  }
}

function chooseLocale(locale) {
  setLocale(locale);
  for (const button of document.querySelectorAll("[data-locale]")) {
    button.setAttribute("aria-pressed", String(button.dataset.locale === getLocale()));
  }
  try {
    localStorage.setItem("asr.locale", getLocale());
  } catch {
    // not kept
  }
  renderStatus();
  renderRecordButton();
  renderSummary();
  panels.render();
  files.render();
}

function storedLocale() {
  const asked = new URLSearchParams(window.location.search).get("lang");
  if (asked === "en" || asked === "pt-BR") return asked;
  try {
    return localStorage.getItem("asr.locale") || "pt-BR";
  } catch {
    return "pt-BR";
  }
}

function init() {
  restoreSettings();
  chooseLocale(storedLocale());
  el.record.addEventListener("click", () => {
    if (el.record.getAttribute("aria-disabled") === "true") return;
    if (run) stopRecording();
    else startRecording();
  });
  for (const button of document.querySelectorAll("[data-locale]")) {
    button.addEventListener("click", () => chooseLocale(button.dataset.locale));
  }
  el.settings.addEventListener("change", () => {
    saveSettings();
    panels.renderInsights();
  });
  $("clear").addEventListener("click", () => {
    summary = null;
    renderSummary();
  });
  fetch("/ready", { cache: "no-store" })
    .then((response) => response.json())
    .then((body) => panels.showVersion(body.version))
    .catch(() => {});
  document.body.dataset.ready = "true";
}

init();
