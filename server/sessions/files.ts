// A student's files, into and out of their container: an upload lands in the
// working directory of their terminal, a download is any path (relative to
// that directory, or absolute). Both run inside the container through the
// backend's exec (engine/process/enter.ts): as the container's root user,
// with the container's root as "/", so a symbolic link the student made
// resolves inside the container and never reaches the host's files. The
// programs are the backend's own busybox applets, not the container's.
//
// An upload is written to a hidden temporary file next to its target and
// renamed into place only once every byte arrived: a cut connection, a full
// disk or the size limit (RLIMIT_FSIZE, behind the HTTP layer's own check)
// leave nothing behind.
import { randomBytes } from "node:crypto";
import { PassThrough, type Readable } from "node:stream";
import type { BackendContainer } from "../runtime/backend.ts";

/** A transfer gets this long from start to end. */
export const TRANSFER_TIMEOUT_MS = 10 * 60_000;
/** Cleaning up after a transfer that was cut off. */
const CLEANUP_TIMEOUT_MS = 10_000;

export type TransferFailure = "bad-request" | "not-found" | "too-large" | "conflict" | "failed";

/** A transfer that did not happen, with a message for the student. */
export class FileTransferError extends Error {
  constructor(
    readonly kind: TransferFailure,
    message: string,
  ) {
    super(message);
  }
}

/** Why `name` cannot be an uploaded file's name, or undefined when it can: one path component. */
export function uploadNameProblem(name: string): string | undefined {
  if (!name) return "the file has no name";
  if (Buffer.byteLength(name) > 255) return "the file's name is longer than 255 bytes";
  if (name === "." || name === "..") return `"${name}" is not a file name`;
  if (name.includes("/")) return "a file name may not hold \"/\"";
  // NUL cannot be passed at all; other control characters would make a terminal listing lie.
  if (/[\u0000-\u001f\u007f]/.test(name)) return "a file name may not hold control characters";
  return undefined;
}

/** Why `path` cannot be downloaded, or undefined when it can be asked for. */
export function downloadPathProblem(path: string): string | undefined {
  if (!path) return "no path given";
  if (Buffer.byteLength(path) > 4096) return "the path is longer than 4096 bytes";
  if (path.includes("\0")) return "a path may not hold a NUL character";
  return undefined;
}

/**
 * Runs with cwd = the terminal's directory: prints that directory, writes
 * stdin into TMP (set -C: never over an existing file), checks every byte
 * came, renames it to NAME (-T: never into a directory of that name).
 */
const UPLOAD_SCRIPT = `
name=$1 size=$2 tmp=$3
pwd
if [ -d "$name" ]; then echo "there is a directory called $name there" >&2; exit 3; fi
set -C
if ! cat > "$tmp"; then rm -f "$tmp"; exit 1; fi
got=$(stat -c %s "$tmp")
if [ "$got" != "$size" ]; then rm -f "$tmp"; echo "the upload was cut short: $got of $size bytes arrived" >&2; exit 4; fi
if ! mv -fT "$tmp" "$name"; then rm -f "$tmp"; exit 1; fi
`;

/** Codes of UPLOAD_SCRIPT and DOWNLOAD_SCRIPT, and what they mean for the student. */
const SCRIPT_FAILURES: Record<number, TransferFailure> = { 2: "not-found", 3: "conflict", 4: "bad-request", 5: "too-large" };

/** Uploads `size` bytes of `body` as NAME in the working directory of the student's terminal; resolves with the file's path in the container. */
export async function uploadFile(container: BackendContainer, file: { name: string; size: number; body: Readable; maxBytes: number }): Promise<{ path: string; bytes: number }> {
  const problem = uploadNameProblem(file.name);
  if (problem) throw new FileTransferError("bad-request", problem);
  if (file.size > file.maxBytes) throw new FileTransferError("too-large", `the file is ${file.size} bytes: uploads may be at most ${file.maxBytes} bytes`);
  const tmp = `.pg-upload-${randomBytes(8).toString("hex")}`;
  const entered = await container.spawn({
    argv: ["sh", "-c", UPLOAD_SCRIPT, "sh", file.name, String(file.size), tmp],
    cwd: "shell",
    timeoutMs: TRANSFER_TIMEOUT_MS,
    // A second wall behind the size check: nothing it writes can grow past the limit.
    maxFileBytes: file.maxBytes,
  });
  const stdout = collect(entered.stdout, 8192);
  const stderr = collect(entered.stderr, 8192);
  // A body that ends early (the browser went away) just ends the input: the script sees the short count.
  const stop = () => entered.stdin.end();
  file.body.once("error", stop);
  file.body.once("aborted", stop);
  entered.stdin.on("error", () => {});
  file.body.pipe(entered.stdin);
  const { code, timedOut } = await entered.exited;
  file.body.unpipe(entered.stdin);
  const dir = (await stdout).split("\n")[0];
  if (code === 0) return { path: `${dir === "/" ? "" : dir}/${file.name}`, bytes: file.size };
  // Ended from outside (the time limit, the size limit's signal): the script could not clean up itself.
  if (code > 128 && dir.startsWith("/")) await container.exec({ argv: ["rm", "-f", "--", `${dir}/${tmp}`], timeoutMs: CLEANUP_TIMEOUT_MS }).catch(() => {});
  if (timedOut) throw new FileTransferError("failed", "the upload took too long and was stopped");
  throw new FileTransferError(SCRIPT_FAILURES[code] ?? "failed", lastLine(await stderr) || `the upload failed (status ${code})`);
}

/**
 * Runs with cwd = the terminal's directory: refuses what is not a regular
 * file (a directory, a FIFO that would never end, a device), then prints the
 * size on a line of its own and the file's bytes.
 */
const DOWNLOAD_SCRIPT = `
f=$1 max=$2
if [ -d "$f" ]; then echo "$f is a directory" >&2; exit 3; fi
if [ ! -e "$f" ]; then echo "no such file: $f" >&2; exit 2; fi
if [ ! -f "$f" ]; then echo "$f is not a regular file" >&2; exit 3; fi
if [ ! -r "$f" ]; then echo "$f cannot be read: permission denied" >&2; exit 3; fi
size=$(stat -L -c %s -- "$f") || exit 1
if [ "$size" -gt "$max" ]; then echo "$f is $size bytes: downloads may be at most $max bytes" >&2; exit 5; fi
echo "$size"
exec cat -- "$f"
`;

export interface Download {
  /** The file's last path component, for the browser to save it as. */
  name: string;
  size: number;
  /** Exactly `size` bytes; it errors if the file changed size while it was read. */
  body: Readable;
}

/** Starts a download of `path` from the student's container; resolves once its size is known. */
export async function downloadFile(container: BackendContainer, path: string, maxBytes: number): Promise<Download> {
  const problem = downloadPathProblem(path);
  if (problem) throw new FileTransferError("bad-request", problem);
  const entered = await container.spawn({ argv: ["sh", "-c", DOWNLOAD_SCRIPT, "sh", path, String(maxBytes)], cwd: "shell", timeoutMs: TRANSFER_TIMEOUT_MS });
  entered.stdin.end();
  const stderr = collect(entered.stderr, 8192);
  const body = new PassThrough();
  let header = Buffer.alloc(0);
  let size = -1;
  let sent = 0;
  const sizeKnown = new Promise<number>((resolve, reject) => {
    entered.stdout.on("data", (chunk: Buffer) => {
      if (size < 0) {
        header = Buffer.concat([header, chunk]);
        const newline = header.indexOf(10);
        if (newline < 0) {
          if (header.length > 32) entered.kill();
          return;
        }
        size = Number(header.subarray(0, newline).toString());
        chunk = header.subarray(newline + 1);
        resolve(size);
      }
      const room = size - sent;
      // More than the size said: the file grew while it was read; the client gets what was promised, then an error.
      if (chunk.length > room) {
        body.write(chunk.subarray(0, room));
        sent = size;
        body.destroy(new Error("the file changed while it was downloaded"));
        entered.kill();
        return;
      }
      sent += chunk.length;
      if (!body.write(chunk)) {
        entered.stdout.pause();
        body.once("drain", () => entered.stdout.resume());
      }
    });
    entered.stdout.on("end", () => {
      if (size < 0) return;
      if (sent === size) body.end();
      else body.destroy(new Error("the file changed while it was downloaded"));
    });
    void entered.exited.then(async ({ code, timedOut }) => {
      if (size >= 0) return;
      if (timedOut) reject(new FileTransferError("failed", "the download took too long and was stopped"));
      else reject(new FileTransferError(SCRIPT_FAILURES[code] ?? "failed", lastLine(await stderr) || `the download failed (status ${code})`));
    });
  });
  // The client went away: stop reading the file.
  body.on("close", () => {
    if (sent < size || size < 0) entered.kill();
  });
  await sizeKnown;
  const name = path.replace(/\/+$/, "").split("/").pop() || "download";
  return { name, size, body };
}

/** The stream's text, up to `max` bytes. */
function collect(stream: Readable, max: number): Promise<string> {
  return new Promise((resolve) => {
    let text = "";
    stream.setEncoding("utf8");
    stream.on("data", (chunk: string) => {
      if (text.length < max) text += chunk.slice(0, max - text.length);
    });
    stream.on("close", () => resolve(text));
    stream.on("error", () => resolve(text));
  });
}

function lastLine(text: string): string {
  const lines = text.trim().split("\n");
  return lines[lines.length - 1]?.trim() ?? "";
}
