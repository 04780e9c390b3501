// How a file reaches the server. A transport is { name, upload(session, file, fields, onProgress) }
// resolving to the accepted job ({ job_id, status, status_url }) or rejecting with an ApiError.
// Today: one multipart POST /upload. A resumable tus transport (/uploads/) can sit beside it;
// pickTransport() is the one place that chooses.
import { ApiError } from "./api.js";

export const multipart = {
  name: "multipart",
  upload(session, file, fields, onProgress) {
    return new Promise((resolve, reject) => {
      const body = new FormData();
      for (const [name, value] of fields) body.append(name, value); // options before the file
      body.append("file", file, file.name);
      // XMLHttpRequest, not fetch: only it reports upload progress.
      const xhr = new XMLHttpRequest();
      xhr.open("POST", "/upload");
      for (const [name, value] of Object.entries(session.authorization())) {
        xhr.setRequestHeader(name, value);
      }
      xhr.upload.addEventListener("progress", (event) => {
        if (event.lengthComputable) onProgress(event.loaded, event.total);
      });
      xhr.addEventListener("load", () => {
        if (xhr.status === 202) {
          onProgress(file.size, file.size);
          resolve(JSON.parse(xhr.responseText));
          return;
        }
        session.rejected(xhr.status);
        reject(ApiError.from(xhr.status, xhr.getResponseHeader("Retry-After"), xhr.responseText));
      });
      // The server may refuse early and close while we still send (too large): say so.
      xhr.addEventListener("error", () => reject(new ApiError(0, "")));
      xhr.addEventListener("abort", () => reject(new ApiError(0, "cancelled")));
      xhr.send(body);
    });
  },
};

/** The transport for a file: multipart today; tus for large files once /uploads/ exists. */
export function pickTransport(file, capabilities = {}) {
  return multipart;
}
