// The file card (upload with progress, drag and drop) and the transcript tools (copy, .txt,
// .srt, clear).
import { getLocale, num, t } from "./i18n.js";
import { transcribeFile } from "./upload.js";

const $ = (id) => document.getElementById(id);

export class FileTools {
  /**
   * @param {{view: import("./transcript.js").TranscriptView, panels: import("./panels.js").Panels,
   *          apiKey: () => string, language: () => string, recording: () => boolean,
   *          onBusy: () => void}} options
   */
  constructor({ view, panels, apiKey, language, recording, onBusy }) {
    this.view = view;
    this.panels = panels;
    this.apiKey = apiKey;
    this.language = language;
    this.recording = recording;
    this.onBusy = onBusy;
    this.uploading = false;
    this.status = null; // {key, values}
    this.copied = false;
    this.el = {
      card: document.querySelector(".upload"),
      form: $("upload-form"),
      file: $("upload-file"),
      fileName: $("upload-file-name"),
      submit: $("upload-submit"),
      progress: $("upload-progress"),
      text: $("upload-text"),
      copy: $("copy"),
      txt: $("download-txt"),
      srt: $("download-srt"),
      clear: $("clear"),
    };
    const { el } = this;
    el.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.upload();
    });
    el.file.addEventListener("change", () => this._setStatus(null));
    el.card.addEventListener("dragover", (event) => {
      event.preventDefault();
      el.card.classList.add("dragging");
    });
    el.card.addEventListener("dragleave", () => el.card.classList.remove("dragging"));
    el.card.addEventListener("drop", (event) => {
      event.preventDefault();
      el.card.classList.remove("dragging");
      if (event.dataTransfer?.files?.length) {
        el.file.files = event.dataTransfer.files;
        this._setStatus(null);
      }
    });
    el.copy.addEventListener("click", () => this.copy());
    el.txt.addEventListener("click", () => download("txt", `${view.text()}\n`, "text/plain"));
    el.srt.addEventListener("click", () => download("srt", view.srt(), "application/x-subrip"));
    el.clear.addEventListener("click", () => view.clear());
  }

  render() {
    const { el } = this;
    el.text.textContent = this.status ? t(this.status.key, this.status.values) : "";
    const file = el.file.files[0];
    el.fileName.textContent = file ? file.name : t("upload.none");
    el.submit.disabled = this.uploading || this.recording();
    const empty = this.view.isEmpty();
    for (const button of [el.copy, el.txt, el.srt]) button.disabled = empty;
    el.clear.disabled = empty || this.recording();
    el.copy.textContent = t(this.copied ? "tools.copied" : "tools.copy");
  }

  upload() {
    const { el } = this;
    const file = el.file.files[0];
    if (!file) {
      this._setStatus({ key: "upload.pick", values: {} });
      return;
    }
    if (this.uploading || this.recording()) return;
    this.uploading = true;
    this.panels.clearAlerts();
    this.onBusy();
    const started = performance.now();
    el.progress.hidden = false;
    const progress = (fraction) => {
      el.progress.value = Math.round(fraction * 100);
      this._setStatus({ key: "upload.sending", values: { pct: Math.round(fraction * 100) } });
    };
    progress(0);
    const { promise } = transcribeFile(file, {
      apiKey: this.apiKey(),
      language: this.language(),
      onProgress: progress,
      onUploaded: () => {
        el.progress.removeAttribute("value"); // indeterminate while the server transcribes
        this._setStatus({ key: "upload.processing", values: {} });
      },
    });
    promise
      .then((body) => {
        const segments = body.segments?.length
          ? body.segments
          : [{ start: 0, end: body.duration || 0, text: body.text || "" }];
        this.view.load(segments);
        el.progress.value = 100;
        const wall = (performance.now() - started) / 1000;
        this._setStatus({
          key: "upload.done",
          values: { audio: num(body.duration || 0), wall: num(wall) },
        });
      })
      .catch((error) => {
        el.progress.hidden = true;
        this._setStatus(null);
        this.panels.showAlert(error.code || "upload_other", {
          message: error.detail || error.message,
        });
      })
      .finally(() => {
        this.uploading = false;
        this.onBusy();
        this.render();
      });
  }

  async copy() {
    const text = this.view.text();
    try {
      await navigator.clipboard.writeText(text);
    } catch {
      // no async clipboard (plain http on a LAN): the old way
      const area = Object.assign(document.createElement("textarea"), { value: text });
      document.body.append(area);
      area.select();
      document.execCommand("copy");
      area.remove();
    }
    this.copied = true;
    this.render();
    setTimeout(() => {
      this.copied = false;
      this.render();
    }, 1500);
  }

  _setStatus(status) {
    this.status = status;
    this.render();
  }
}

function download(extension, text, type) {
  const stamp = new Date().toISOString().slice(0, 16).replace(/[-:T]/g, "");
  const url = URL.createObjectURL(new Blob([text], { type: `${type};charset=utf-8` }));
  const link = document.createElement("a");
  link.href = url;
  link.download = `${getLocale() === "en" ? "transcript" : "transcricao"}-${stamp}.${extension}`;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
