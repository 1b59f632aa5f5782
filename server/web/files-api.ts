// Files in and out of a student's container, over HTTP (the page's "Upload"
// button, a file dropped on the terminal, the download field):
//   POST /api/files/upload?name=NAME   the body is the file (Content-Length
//                                       required); it lands in the working
//                                       directory of the student's terminal
//   GET  /api/files/download?path=PATH  the file, as an attachment
// Who: the browser holding the session's cookie (httpOnly), and nobody else;
// there is no way to name another student's session. A request that comes
// from another origin (a page on another site, or a port preview, which is
// served from this host's preview port) is refused: cookies are sent to every
// port of a host, so the Origin header is what tells the two apart.
// The transfers themselves: sessions/files.ts.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "pino";
import type { Session } from "../sessions/session.ts";
import type { SessionRegistry } from "../sessions/registry.ts";
import { downloadFile, FileTransferError, uploadFile, type TransferFailure } from "../sessions/files.ts";
import { secretFromCookieHeader } from "./cookies.ts";
import { HttpError, sendJson } from "./http-json.ts";
import { sameOrigin } from "./origin.ts";

export interface FilesDeps {
  registry: SessionRegistry;
  /** The largest file uploaded or downloaded. */
  maxBytes: number;
  log: Logger;
}

/** Transfers one session may have going at once: each holds a process in the container. */
const MAX_TRANSFERS_PER_SESSION = 2;

const STATUS: Record<TransferFailure, number> = { "bad-request": 400, "not-found": 404, "too-large": 413, conflict: 409, failed: 500 };

const inFlight = new WeakMap<Session, number>();

/** Handles /api/files/…; the caller turns an HttpError into its JSON answer. */
export async function handleFiles(deps: FilesDeps, url: URL, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const route = url.pathname;
  if (route !== "/api/files/upload" && route !== "/api/files/download") throw new HttpError(404, `no such API route: ${route}`);
  const method = route.endsWith("upload") ? "POST" : "GET";
  if (req.method !== method) throw new HttpError(405, `use ${method}`, { allow: method });
  if (!sameOrigin(req)) throw new HttpError(403, "files can be sent and fetched only from the playground's own page");
  const session = sessionOf(deps.registry, req);
  const running = inFlight.get(session) ?? 0;
  if (running >= MAX_TRANSFERS_PER_SESSION) throw new HttpError(429, `at most ${MAX_TRANSFERS_PER_SESSION} transfers at once: wait for one to finish`);
  inFlight.set(session, running + 1);
  try {
    if (method === "POST") await upload(deps, session, url, req, res);
    else await download(deps, session, url, res);
  } catch (error) {
    if (error instanceof FileTransferError) throw new HttpError(STATUS[error.kind], error.message);
    throw error;
  } finally {
    inFlight.set(session, (inFlight.get(session) ?? 1) - 1);
  }
}

/** The running session of the browser that sent the request (its cookie), or a 401/409. */
function sessionOf(registry: SessionRegistry, req: IncomingMessage): Session {
  const secret = secretFromCookieHeader(req.headers.cookie);
  const session = secret ? registry.forCookie(secret) : undefined;
  if (!session) throw new HttpError(401, "this browser has no session: start one first");
  if (session.state !== "running" || !session.container) throw new HttpError(409, "your container is not running");
  return session;
}

async function upload(deps: FilesDeps, session: Session, url: URL, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const name = url.searchParams.get("name") ?? "";
  const length = req.headers["content-length"];
  if (length === undefined) throw new HttpError(411, "send the file with its length (Content-Length)");
  const size = Number(length);
  if (!Number.isSafeInteger(size) || size < 0) throw new HttpError(400, "bad Content-Length");
  // Refused before anything runs in the container. (Node reads and drops the body after the answer, so that
  // clients that send it all before reading, as fetch does, see the answer rather than a broken connection.)
  if (size > deps.maxBytes) throw new HttpError(413, `the file is ${size} bytes: uploads may be at most ${deps.maxBytes} bytes`);
  const saved = await uploadFile(session.container!, { name, size, body: req, maxBytes: deps.maxBytes });
  deps.log.info({ session: session.id, path: saved.path, bytes: saved.bytes }, "file uploaded");
  sendJson(res, 200, saved);
}

async function download(deps: FilesDeps, session: Session, url: URL, res: ServerResponse): Promise<void> {
  const file = await downloadFile(session.container!, url.searchParams.get("path") ?? "", deps.maxBytes);
  res.writeHead(200, {
    "content-type": "application/octet-stream",
    "content-length": file.size,
    "content-disposition": contentDisposition(file.name),
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
  });
  file.body.pipe(res);
  await new Promise<void>((resolve) => {
    // A file that changed while it was read ends the response early: the browser sees a failed download.
    file.body.once("error", () => res.destroy());
    res.once("close", () => {
      file.body.destroy();
      resolve();
    });
  });
  deps.log.info({ session: session.id, name: file.name, bytes: file.size }, "file downloaded");
}

/** attachment; an ASCII fallback name, and the real one in RFC 5987 form. */
export function contentDisposition(name: string): string {
  const ascii = name.replace(/[^\x20-\x7e]|["\\]/g, "_");
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(name)}`;
}

