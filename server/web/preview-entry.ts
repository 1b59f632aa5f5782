// The way into a port preview, on the main origin: the student page's links
// (/preview/<session>/<port>/…) and the instructor's button end here. The
// main origin knows who asks (the student's session cookie, the instructor's
// token) and sends the browser on to the preview origin, with a grant good
// for a minute that the preview origin trades for a cookie of its own (see
// preview-proxy.ts for why previews have an origin of their own).
import type { IncomingMessage, ServerResponse } from "node:http";
import type { SessionRegistry } from "../sessions/registry.ts";
import { secretFromCookieHeader } from "./cookies.ts";
import { sendJson } from "./http-json.ts";
import { GRANT_PARAM, type PreviewGrants } from "./preview-grants.ts";
import { parsePreviewPath } from "./preview-path.ts";
import { hostnameOf, type RequestGuard } from "./request-guard.ts";

export class PreviewEntry {
  constructor(
    private readonly registry: SessionRegistry,
    private readonly grants: PreviewGrants,
    private readonly guard: RequestGuard,
    /** The preview listener's port (known once it listens). */
    private readonly previewPort: () => number,
  ) {}

  /** Handles GET /preview/… on the main origin (returns false for any other request). */
  handle(req: IncomingMessage, res: ServerResponse): boolean {
    const url = new URL(req.url ?? "/", "http://main");
    if (url.pathname !== "/preview" && !url.pathname.startsWith("/preview/")) return false;
    const where = parsePreviewPath(url.pathname);
    if (!where) {
      sendJson(res, 404, { error: "a port preview's address is /preview/<session>/<port>/" });
      return true;
    }
    const secret = secretFromCookieHeader(req.headers.cookie);
    if (!secret || this.registry.forCookie(secret)?.id !== where.session) {
      sendJson(res, 403, { error: "this preview belongs to another session: students see their own, the instructor opens any from the instructor page" });
      return true;
    }
    res.writeHead(303, { location: this.link(req, where.session, where.port, `${where.rest || "/"}${url.search}`), "cache-control": "no-store", "referrer-policy": "no-referrer", "content-length": 0 });
    res.end();
    return true;
  }

  /** The preview origin's address of `session`'s `port` (at `rest`), with a fresh grant. */
  link(req: IncomingMessage, session: string, port: number, rest = "/"): string {
    const hostname = hostnameOf(req.headers.host ?? "localhost");
    const host = hostname.includes(":") ? `[${hostname}]` : hostname;
    const url = new URL(`${this.guard.secure(req) ? "https" : "http"}://${host}:${this.previewPort()}/preview/${session}/${port}${rest}`);
    url.searchParams.set(GRANT_PARAM, this.grants.grant(session));
    return url.toString();
  }
}
