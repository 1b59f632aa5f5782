// The JSON API, served before the Next.js pages:
//   POST /api/admin/reset   (admin token)  end every session, remove every container
//                                           and network object of the playground;
//                                           ?purge=1 also deletes the work students kept
//   PUT  /api/admin/room    (admin token)  what new sessions get: {image?, memory?, cpus?, pids?, profile?}
//                                           (the warm pool is rebuilt to match); GET (instructor or admin token) shows it
//   GET  /api/sessions      (instructor or admin token)  the session list
//   GET  /api/recordings    (instructor or admin token)  every recording kept, newest first
//   GET  /api/recordings/ID.cast  (instructor or admin token, or the session's own
//                                  browser by its cookie)  a session's recording
//                                  (asciicast v2); a live one as far as it is written
//   GET  /api/health        (no token)     server, database and kernel prerequisites
//   POST /api/files/upload, GET /api/files/download  (the student's session cookie)
//                                           files into and out of their container (files-api.ts)
//   POST /api/preview       (instructor or admin token)  {session, port}: the address
//                                           of that port's preview, with a grant good for
//                                           a minute (preview-entry.ts)
// Tokens come as `Authorization: Bearer …`. A missing or wrong token is a 401
// and nothing is done. Anything else under /api/ is a 404 here, never a page.
import fs from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { pipeline } from "node:stream/promises";
import type { Logger } from "pino";
import { z } from "zod";
import type { Db } from "../db.ts";
import { handleFiles } from "./files-api.ts";
import type { PreviewEntry } from "./preview-entry.ts";
import type { Recordings } from "../sessions/recordings.ts";
import { hashCookie, type SessionRegistry } from "../sessions/registry.ts";
import { secretFromCookieHeader } from "./cookies.ts";
import { checkHealth } from "./health.ts";
import { HttpError, readJsonBody, sendJson } from "./http-json.ts";
import { bearerToken, roleOf, tokenMatches, type Role, type Tokens } from "./tokens.ts";
import { firstIssue } from "../common/validation.ts";
import { Cpus, Memory, PidsLimit } from "../common/limits.ts";
import { isImageReference } from "../engine/image/reference.ts";
import { SessionId } from "../common/protocol.ts";

/** No route takes more than a small JSON object. */
const BODY_LIMIT = 4 * 1024;

/** A port preview the instructor opens. */
const PreviewRequest = z.object({ session: SessionId, port: z.number().int().min(1).max(65535) }).strict();

/** The reset takes no options today; an empty body or `{}` is all it accepts. */
const ResetRequest = z.object({}).strict().optional();

/** A change to the room: each field optional, each checked as its setting is. */
const RoomChange = z
  .object({
    image: z.string().min(1).max(255).refine(isImageReference, "not an image reference (such as alpine:3.20)").optional(),
    memory: Memory.optional(),
    cpus: Cpus.optional(),
    pids: PidsLimit.optional(),
    profile: z.enum(["default", "nested"]).optional(),
  })
  .strict();

export const RESET_REASON = "the playground was reset by its administrator";

export interface ApiDeps {
  registry: SessionRegistry;
  /** Removes every container and network object of the playground; returns what it removed. */
  removeAll(): Promise<unknown>;
  /** Deletes every student's kept work; returns how many archives. */
  purgeWork(): Promise<number>;
  recordings: Recordings;
  db: Db;
  tokens: Tokens;
  /** The largest file a student may upload or download. */
  fileMaxBytes: number;
  preview: PreviewEntry;
  log: Logger;
}

/** Handles the request if it is for /api/; returns false to let the pages have it. */
export function apiHandler(deps: ApiDeps): (req: IncomingMessage, res: ServerResponse) => boolean {
  return (req, res) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    if (url.pathname !== "/api" && !url.pathname.startsWith("/api/")) return false;
    route(deps, url, req, res).catch((error: unknown) => {
      if (error instanceof HttpError) {
        sendJson(res, error.status, { error: error.message }, error.headers);
      } else {
        deps.log.error({ err: String(error), path: url.pathname }, "API request failed");
        if (!res.headersSent) sendJson(res, 500, { error: "internal error; see the server log" });
        else res.destroy();
      }
    });
    return true;
  };
}

async function route(deps: ApiDeps, url: URL, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = url.pathname;
  if (path.startsWith("/api/files/")) return handleFiles({ registry: deps.registry, maxBytes: deps.fileMaxBytes, log: deps.log }, url, req, res);
  switch (path) {
    case "/api/health": {
      allowMethod(req, "GET");
      const health = await checkHealth(deps.db);
      return sendJson(res, health.ok ? 200 : 503, { ...health, sessions: deps.registry.live().length });
    }
    case "/api/sessions": {
      allowMethod(req, "GET");
      requireRole(req, deps.tokens, "instructor");
      return sendJson(res, 200, { sessions: await deps.registry.rows() });
    }
    case "/api/recordings": {
      allowMethod(req, "GET");
      requireRole(req, deps.tokens, "instructor");
      return sendJson(res, 200, { recordings: await listRecordings(deps) });
    }
    case "/api/admin/reset": {
      allowMethod(req, "POST");
      // The token is checked before the body is read: a stranger's request costs nothing.
      requireRole(req, deps.tokens, "admin");
      const parsed = ResetRequest.safeParse(await readJsonBody(req, BODY_LIMIT));
      if (!parsed.success) throw new HttpError(400, `invalid request: ${firstIssue(parsed.error)}`);
      deps.log.warn("admin reset: ending every session and removing every container");
      const purge = url.searchParams.get("purge") === "1";
      const sessionsEnded = await deps.registry.endAll(RESET_REASON, "reset");
      const removed = await deps.removeAll();
      // Kept work survives a reset (the next class may continue) unless asked.
      const workPurged = purge ? await deps.purgeWork() : 0;
      deps.log.warn({ sessionsEnded, removed, workPurged }, "admin reset done");
      return sendJson(res, 200, { ok: true, sessionsEnded, removed, workPurged });
    }
    case "/api/admin/room": {
      if (req.method === "GET") {
        requireRole(req, deps.tokens, "instructor");
        return sendJson(res, 200, deps.registry.room);
      }
      allowMethod(req, "PUT");
      requireRole(req, deps.tokens, "admin");
      const parsed = RoomChange.safeParse(await readJsonBody(req, BODY_LIMIT));
      if (!parsed.success) throw new HttpError(400, `invalid request: ${firstIssue(parsed.error)}`);
      const { image, memory, cpus, pids, profile } = parsed.data;
      const now = deps.registry.room;
      const limits = { memoryBytes: memory ?? now.limits.memoryBytes, cpus: cpus ?? now.limits.cpus, pidsLimit: pids ?? now.limits.pidsLimit };
      // A session cap that was one container's share stays one container's share.
      const capFollows = now.sessionCap.memoryBytes === now.limits.memoryBytes && now.sessionCap.pidsLimit === now.limits.pidsLimit;
      const room = {
        image: image ?? now.image,
        limits,
        profile: profile ?? now.profile,
        sessionCap: capFollows && limits.memoryBytes !== undefined && limits.pidsLimit !== undefined ? { memoryBytes: limits.memoryBytes, pidsLimit: limits.pidsLimit } : now.sessionCap,
      };
      deps.registry.setRoom(room);
      deps.log.warn({ room }, "the room changed: new sessions get this");
      return sendJson(res, 200, room);
    }
    case "/api/preview": {
      allowMethod(req, "POST");
      requireRole(req, deps.tokens, "instructor");
      const parsed = PreviewRequest.safeParse(await readJsonBody(req, BODY_LIMIT));
      if (!parsed.success) throw new HttpError(400, `invalid request: ${firstIssue(parsed.error)}`);
      const session = deps.registry.get(parsed.data.session);
      if (!session || session.state !== "running") throw new HttpError(404, "no such running session");
      return sendJson(res, 200, { url: deps.preview.link(req, session.id, parsed.data.port) });
    }
    default: {
      const cast = CAST_PATH.exec(path);
      if (cast) {
        allowMethod(req, "GET");
        return sendRecording(deps, req, res, cast[1]);
      }
      throw new HttpError(404, `no such API route: ${path}`);
    }
  }
}

const CAST_PATH = /^\/api\/recordings\/([A-Za-z0-9_-]{8,64})\.cast$/;

/** Every recording kept, with whose session it was. */
async function listRecordings(deps: ApiDeps) {
  const files = await deps.recordings.list();
  const rows = await deps.db.session.findMany({ where: { id: { in: files.map((f) => f.session) } } });
  const byId = new Map(rows.map((r) => [r.id, r]));
  return files
    .sort((a, b) => b.modifiedMs - a.modifiedMs)
    .map((f) => {
      const row = byId.get(f.session);
      return {
        session: f.session,
        bytes: f.bytes,
        live: f.live,
        modifiedAt: new Date(f.modifiedMs).toISOString(),
        studentName: row?.studentName ?? undefined,
        startedAt: row?.createdAt.toISOString(),
        endedAt: row?.endedAt?.toISOString(),
      };
    });
}

/**
 * A recording, streamed: instructors may have any; a student the recordings
 * of their own browser's sessions (its cookie's hash is on the session's record).
 */
async function sendRecording(deps: ApiDeps, req: IncomingMessage, res: ServerResponse, sessionId: string): Promise<void> {
  const role = roleOf(bearerToken(req.headers.authorization), deps.tokens);
  if (!role && !(await ownsSession(deps, req, sessionId))) {
    throw new HttpError(401, "an instructor token (Authorization: Bearer …) or this session's own browser is required", { "www-authenticate": "Bearer" });
  }
  const found = await deps.recordings.find(sessionId);
  if (!found) throw new HttpError(404, "this session has no recording (it was not recorded, or it is past the recordings' retention)");
  res.writeHead(200, {
    "content-type": "application/x-asciicast",
    "content-length": found.bytes,
    "content-disposition": `attachment; filename="playground-${sessionId}.cast"`,
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
  });
  if (found.bytes === 0) return void res.end();
  // No further than the last complete append: a live recording's next one may be under way.
  try {
    await pipeline(fs.createReadStream(found.file, { start: 0, end: found.bytes - 1 }), res);
  } catch (error) {
    // The response is cut either way; a client that went away mid-download is no server error.
    if (!req.destroyed) deps.log.warn({ session: sessionId, err: String(error) }, "could not send a recording");
  }
}

async function ownsSession(deps: ApiDeps, req: IncomingMessage, sessionId: string): Promise<boolean> {
  const secret = secretFromCookieHeader(req.headers.cookie);
  if (!secret) return false;
  const row = await deps.db.session.findUnique({ where: { id: sessionId }, select: { cookieHash: true } });
  return row?.cookieHash ? tokenMatches(hashCookie(secret), row.cookieHash) : false;
}

function allowMethod(req: IncomingMessage, method: string): void {
  if (req.method !== method) throw new HttpError(405, `use ${method}`, { allow: method });
}

/** The admin may do everything the instructor may. */
function requireRole(req: IncomingMessage, tokens: Tokens, needed: Role): void {
  const role = roleOf(bearerToken(req.headers.authorization), tokens);
  if (role === "admin" || role === needed) return;
  throw new HttpError(401, `a valid ${needed} token is required (Authorization: Bearer …)`, { "www-authenticate": "Bearer" });
}
