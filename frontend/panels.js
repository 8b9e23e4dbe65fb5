// Side panels and alerts: the session's effective config (ready.config / config_sources),
// latency per window (transcript.timing.batch_ms), insights, and human-readable errors.
// Each panel keeps what it shows, so a language switch can render it again.
import { hasKey, num, t } from "./i18n.js";

const LATENCY_BARS = 30;
const MAX_ALERTS = 3;
const MAX_INSIGHTS = 1; // each event holds the session's figures so far: the latest is enough

const $ = (id) => document.getElementById(id);

export class Panels {
  constructor() {
    this.el = {
      version: $("server-version"),
      alerts: $("alerts"),
      sessionNone: $("session-none"),
      sessionConfig: $("session-config"),
      sessionWarnings: $("session-warnings"),
      audio: $("cfg-audio"),
      latLast: $("lat-last"),
      latMedian: $("lat-median"),
      latCount: $("lat-count"),
      latChart: $("lat-chart"),
      insightsToggle: $("insights"),
      insightsCard: $("insights-card"),
      insightsWaiting: $("insights-waiting"),
      insightsList: $("insights-list"),
    };
    this.ready = null;
    this.audioSec = 0; // audio the server acknowledged, on the recording's timeline
    this.latencies = [];
    this.alerts = []; // {key, values}
    this.insights = [];
  }

  /** A new recording: forget the previous session's figures. */
  reset() {
    this.ready = null;
    this.audioSec = 0;
    this.latencies = [];
    this.insights = [];
    this.alerts = [];
    this.render();
  }

  render() {
    this.renderSession();
    this.renderLatency();
    this.renderInsights();
    this.renderAlerts();
  }

  // ---- session -------------------------------------------------------------------------------

  showReady(ready) {
    this.ready = ready;
    this.showVersion(ready.version);
    this.renderSession();
  }

  setAudio(seconds) {
    this.audioSec = seconds;
    this.el.audio.textContent = `${num(seconds)} s`;
  }

  showVersion(version) {
    if (!version) return;
    this.el.version.textContent = `v${version}`;
    this.el.version.hidden = false;
  }

  renderSession() {
    const { ready, el } = this;
    el.sessionNone.hidden = Boolean(ready);
    el.sessionConfig.hidden = !ready;
    el.sessionWarnings.hidden = !ready || !ready.warnings?.length;
    if (!ready) return;
    const config = ready.config || {};
    const sources = ready.config_sources || {};
    const cell = (id, text, source) => {
      const dd = $(id);
      dd.textContent = text;
      if (source) {
        const badge = document.createElement("span");
        badge.className = `source source-${source}`;
        badge.textContent = hasKey(`source.${source}`) ? t(`source.${source}`) : source;
        dd.append(" ", badge);
      }
    };
    if (config.mode === "stream") {
      // stream mode has no batch windows: a pass every min_chunk_sec of new audio
      cell("cfg-window", t("session.stream_every", { sec: num(config.min_chunk_sec) }));
      cell("cfg-max-window", "–");
    } else {
      cell("cfg-window", `${num(config.batch_window_sec)} s`, sources.batch_window_sec);
      cell("cfg-max-window", `${num(config.max_batch_window_sec)} s`, sources.max_batch_window_sec);
    }
    cell("cfg-beam", String(config.beam_size ?? "–"), sources.beam_size);
    cell("cfg-best-of", String(config.best_of ?? "–"), sources.best_of);
    cell("cfg-language", config.language || t("session.auto"));
    cell("cfg-version", ready.version || "–");
    cell("cfg-session", ready.session_id || "–");
    $("cfg-session").title = ready.session_id || "";
    this.setAudio(this.audioSec);
    el.sessionWarnings.replaceChildren(
      ...(ready.warnings || []).map((text) => {
        const item = document.createElement("li");
        item.textContent = text; // the server's words, as sent
        return item;
      })
    );
  }

  // ---- latency -------------------------------------------------------------------------------

  addLatency(batchMs) {
    if (!Number.isFinite(batchMs)) return;
    this.latencies.push(batchMs);
    this.renderLatency();
  }

  renderLatency() {
    const { latencies: values, el } = this;
    const ms = (v) => `${Math.round(v)} ms`;
    el.latLast.textContent = values.length ? ms(values[values.length - 1]) : "–";
    const sorted = [...values].sort((a, b) => a - b);
    el.latMedian.textContent = sorted.length ? ms(sorted[Math.floor((sorted.length - 1) / 2)]) : "–";
    el.latCount.textContent = String(values.length);
    const recent = values.slice(-LATENCY_BARS);
    const top = Math.max(1000, ...recent);
    el.latChart.replaceChildren(
      ...recent.map((v) => {
        const bar = document.createElement("span");
        bar.className = `bar ${v < 1000 ? "fast" : v < 2500 ? "ok" : "slow"}`;
        bar.style.height = `${Math.max(4, (v / top) * 100)}%`;
        bar.title = ms(v);
        return bar;
      })
    );
  }

  // ---- insights (`insights` events: figures, keywords, summary; the latest is shown) --------

  addInsight(event) {
    if (!this.el.insightsToggle.checked) return;
    this.insights = [event, ...this.insights].slice(0, MAX_INSIGHTS);
    this.renderInsights();
  }

  renderInsights() {
    const { el } = this;
    el.insightsCard.hidden = !el.insightsToggle.checked;
    el.insightsWaiting.hidden = this.insights.length > 0;
    const latest = this.insights[0];
    el.insightsList.replaceChildren(...(latest ? [insightItem(latest)] : []));
  }

  // ---- alerts --------------------------------------------------------------------------------

  /** An error code (docs/protocol.md, or a local one) as a message in the current language. */
  showAlert(code, values = {}) {
    const key = hasKey(`error.${code}`) ? `error.${code}` : "error.unknown";
    const alert = { key, values: { code, ...values } };
    this.alerts = [...this.alerts.filter((a) => a.key !== key), alert].slice(-MAX_ALERTS);
    this.renderAlerts();
  }

  clearAlerts() {
    this.alerts = [];
    this.renderAlerts();
  }

  renderAlerts() {
    this.el.alerts.replaceChildren(
      ...this.alerts.map((alert) => {
        const box = document.createElement("div");
        box.className = "alert";
        box.dataset.code = alert.values.code;
        const text = document.createElement("span");
        text.textContent = t(alert.key, alert.values);
        const close = document.createElement("button");
        close.type = "button";
        close.className = "alert-close";
        close.setAttribute("aria-label", t("error.dismiss"));
        close.textContent = "×";
        close.addEventListener("click", () => {
          this.alerts = this.alerts.filter((a) => a !== alert);
          this.renderAlerts();
        });
        box.append(text, close);
        return box;
      })
    );
  }
}

// fields the panel lays out itself; any other field a provider adds is listed as name: value
const INSIGHT_FIELDS = new Set([
  "event", "provider", "final", "error", "audio_sec", "speaking_sec", "word_count",
  "words_per_minute", "silence_ratio", "keywords", "summary", "language", "channels",
]);

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text; // server text is never parsed as HTML
  return node;
}

const isNum = (value) => typeof value === "number" && Number.isFinite(value);
const seconds = (value) => {
  if (!isNum(value)) return "–";
  if (value < 60) return `${num(value)} s`;
  const whole = Math.round(value);
  return `${Math.floor(whole / 60)}:${String(whole % 60).padStart(2, "0")}`;
};
const perMinute = (value) => (isNum(value) ? num(value, 0) : "–");
const percent = (value) => (isNum(value) ? `${num(value * 100, 0)}%` : "–");

function insightStats(figures) {
  const stats = element("div", "insight-stats");
  for (const [key, text] of [
    ["insights.speaking", seconds(figures.speaking_sec)],
    ["insights.wpm", perMinute(figures.words_per_minute)],
    ["insights.silence", percent(figures.silence_ratio)],
  ]) {
    const stat = element("div", "stat");
    stat.append(element("span", "stat-value", text), element("span", "stat-label", t(key)));
    stats.append(stat);
  }
  return stats;
}

/** One `insights` event as the panel's content. */
function insightItem(event) {
  const item = element("li", "insight");
  item.dataset.final = String(Boolean(event.final));
  const head = element("div", "insight-head");
  head.append(
    element("strong", "", event.provider || "–"),
    element("span", `insight-badge${event.final ? " final" : ""}`, t(event.final ? "insights.final" : "insights.live"))
  );
  item.append(head, insightStats(event));
  for (const channel of Array.isArray(event.channels) ? event.channels : []) {
    item.append(
      element(
        "div",
        "insight-channel",
        `${t("insights.channel", { n: channel.channel + 1 })}: ${seconds(channel.speaking_sec)} · ` +
          `${perMinute(channel.words_per_minute)} ${t("insights.wpm")} · ${percent(channel.silence_ratio)}`
      )
    );
  }
  const keywords = Array.isArray(event.keywords) ? event.keywords : [];
  item.append(element("div", "insight-label", t("insights.keywords")));
  const chips = element("ul", "chips");
  chips.setAttribute("aria-label", t("insights.keywords"));
  if (keywords.length) chips.append(...keywords.map((word) => element("li", "chip", String(word))));
  else chips.append(element("li", "muted", t("insights.no_keywords")));
  item.append(chips);
  if (event.summary) {
    item.append(element("div", "insight-label", t("insights.summary")));
    item.append(element("p", "insight-summary", event.summary));
  }
  for (const [name, value] of Object.entries(event)) {
    if (INSIGHT_FIELDS.has(name) || value === null || value === undefined) continue;
    const text = typeof value === "string" ? value : JSON.stringify(value);
    item.append(element("div", "insight-extra", `${name}: ${text.length > 300 ? `${text.slice(0, 300)}…` : text}`));
  }
  if (event.error) {
    const error = element("div", "insight-error", t("insights.error", { message: event.error }));
    error.setAttribute("role", "status");
    item.append(error);
  }
  return item;
}

/** The values an `error` event's message needs. */
export function errorValues(event) {
  const values = { code: event.code, message: event.message || "" };
  if (event.span) values.span = `${num(event.span.start)}–${num(event.span.end)} s`;
  if (event.retry_after_sec) values.sec = num(event.retry_after_sec);
  return values;
}
