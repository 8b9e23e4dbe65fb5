// File transcription over `POST /v1/audio/transcriptions` (OpenAI-compatible), with upload
// progress (XMLHttpRequest is the API that reports it) and human-readable failures.

export class UploadError extends Error {
  constructor(code, detail = "") {
    super(detail || code);
    this.code = code; // upload_network | upload_too_large | upload_unsupported | ...
    this.detail = detail;
  }
}

/**
 * @param {File} file
 * @param {{apiKey?: string, language?: string, onProgress?: (fraction: number) => void,
 *          onUploaded?: () => void}} options
 * @returns {{promise: Promise<object>, abort: () => void}} the verbose_json body
 */
export function transcribeFile(file, { apiKey, language, onProgress, onUploaded } = {}) {
  const xhr = new XMLHttpRequest();
  const promise = new Promise((resolve, reject) => {
    const form = new FormData();
    form.append("file", file, file.name);
    form.append("response_format", "verbose_json");
    form.append("timestamp_granularities[]", "segment");
    if (language) form.append("language", language);
    xhr.open("POST", "/v1/audio/transcriptions");
    xhr.responseType = "text";
    if (apiKey) xhr.setRequestHeader("Authorization", `Bearer ${apiKey}`);
    xhr.upload.onprogress = (event) => {
      if (event.lengthComputable && onProgress) onProgress(event.loaded / event.total);
    };
    xhr.upload.onload = () => onUploaded?.();
    xhr.onerror = () => reject(new UploadError("upload_network"));
    xhr.onabort = () => reject(new UploadError("upload_aborted"));
    xhr.onload = () => {
      let body = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        body = null;
      }
      if (xhr.status >= 200 && xhr.status < 300 && body) {
        resolve(body);
        return;
      }
      reject(new UploadError(codeFor(xhr.status), detailOf(body, xhr)));
    };
    xhr.send(form);
  });
  return { promise, abort: () => xhr.abort() };
}

function codeFor(status) {
  if (status === 401 || status === 403) return "upload_unauthorized";
  if (status === 413) return "upload_too_large";
  if (status === 415) return "upload_unsupported";
  if (status === 400 || status === 422) return "upload_rejected";
  if (status === 429 || status === 503) return "upload_busy";
  if (status === 502 || status === 504) return "upload_failed";
  return "upload_other";
}

function detailOf(body, xhr) {
  const detail = body?.detail ?? body?.error?.message;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) return detail.map((d) => d.msg || JSON.stringify(d)).join("; ");
  return `HTTP ${xhr.status} ${xhr.statusText}`.trim();
}
