// Moving files between the browser and the student's container, over the
// server's HTTP routes (server/web/files-api.ts). The browser sends its
// session cookie with each request by itself: nothing here names a session.
// Both directions report progress as they go.

export interface Progress {
  /** Bytes moved so far, and in all (0 when not yet known). */
  done: number;
  total: number;
}

/** Why a transfer failed, as the server said it. */
async function errorOf(response: Response): Promise<Error> {
  const body = await response.json().catch(() => undefined);
  return new Error((body as { error?: string } | undefined)?.error ?? `the server answered ${response.status}`);
}

/**
 * Sends `file` into the working directory of the student's terminal; resolves
 * with its path in the container. XMLHttpRequest, not fetch: only it reports
 * an upload's progress.
 */
export function uploadFile(file: File, onProgress: (p: Progress) => void): Promise<{ path: string }> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `/api/files/upload?name=${encodeURIComponent(file.name)}`);
    xhr.setRequestHeader("content-type", "application/octet-stream");
    xhr.upload.onprogress = (event) => onProgress({ done: event.loaded, total: event.lengthComputable ? event.total : file.size });
    xhr.onload = () => {
      let body: { path?: string; error?: string } = {};
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        // not JSON: said below
      }
      if (xhr.status === 200 && body.path) resolve({ path: body.path });
      else reject(new Error(body.error ?? `the server answered ${xhr.status}`));
    };
    xhr.onerror = () => reject(new Error("the connection to the playground was lost"));
    xhr.send(file);
  });
}

/** The file's name from the server's Content-Disposition (its UTF-8 form). */
function savedName(response: Response, fallback: string): string {
  const header = response.headers.get("content-disposition") ?? "";
  const encoded = /filename\*=UTF-8''([^;]+)/.exec(header)?.[1];
  try {
    return encoded ? decodeURIComponent(encoded) : fallback;
  } catch {
    return fallback;
  }
}

/** Fetches `path` from the container (relative to the terminal's directory) and has the browser save it. */
export async function downloadFile(path: string, onProgress: (p: Progress) => void): Promise<{ name: string; bytes: number }> {
  const response = await fetch(`/api/files/download?path=${encodeURIComponent(path)}`);
  if (!response.ok || !response.body) throw await errorOf(response);
  const total = Number(response.headers.get("content-length") ?? 0);
  const reader = response.body.getReader();
  const parts: Uint8Array<ArrayBuffer>[] = [];
  let done = 0;
  for (;;) {
    const { value, done: finished } = await reader.read();
    if (finished) break;
    parts.push(value);
    done += value.length;
    onProgress({ done, total });
  }
  const name = savedName(response, path.split("/").pop() || "download");
  const url = URL.createObjectURL(new Blob(parts, { type: "application/octet-stream" }));
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  link.click();
  // The browser has started its own copy of the blob by now.
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
  return { name, bytes: done };
}
