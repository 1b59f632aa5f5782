// The port preview: a second listener (PLAYGROUND_PREVIEW_PORT, by default the
// main port + 1) that relays /preview/<session>/<port>/… to that session's
// container, at its address on the bridge, HTTP and WebSocket alike.
//
// Why a listener, an origin, of its own: what a student's server sends is
// the student's to choose, scripts included, and the instructor opens it
// too. Served from the main origin, such a script could read the
// instructor's token (kept in the main origin's storage) and act as the
// instructor. On another port it is another origin: it shares no storage
// with the main pages, cannot read their answers, and the main server
// refuses what it sends (socket.io and the file routes check the Origin).
// Cookies are the exception (a browser sends a host's cookies to every port
// of it): the playground's own are httpOnly, never forwarded to a preview,
// and a preview may not set one of their names (preview-rewrite.ts).
//
// Who gets through, for session S: a browser holding S's own session cookie
// (the student), or a preview cookie for S, which a short-lived grant from
// the main origin sets (preview-grants.ts): the main origin gives grants to
// the student's browser and to the instructor. Anyone else is refused.
import http, { type IncomingMessage, type ServerResponse } from "node:http";
import net from "node:net";
import type { Duplex } from "node:stream";
import type { Logger } from "pino";
import type { SessionRegistry } from "../sessions/registry.ts";
import { secretFromCookieHeader } from "./cookies.ts";
import { GRANT_PARAM, PREVIEW_COOKIE, type PreviewGrants } from "./preview-grants.ts";
import { parsePreviewPath, type PreviewPath } from "./preview-path.ts";
import { downstreamHeaders, MAX_REWRITTEN_HTML, rewriteHtml, upstreamHeaders, type Upstream } from "./preview-rewrite.ts";
import type { RequestGuard } from "./request-guard.ts";

/** How long the container's server may take to accept a connection. */
const CONNECT_TIMEOUT_MS = 10_000;

export class PreviewProxy {
  constructor(
    private readonly registry: SessionRegistry,
    private readonly grants: PreviewGrants,
    private readonly guard: RequestGuard,
    private readonly log: Logger,
  ) {}

  /** An HTTP request to the preview listener. */
  handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? "/", "http://preview");
    const where = parsePreviewPath(url.pathname);
    if (!where) return page(res, 404, "Nothing here", "Port previews live at /preview/<session>/<port>/: open one from the playground's page.");
    const grant = url.searchParams.get(GRANT_PARAM);
    if (grant !== null) return this.redeem(req, res, url, where, grant);
    if (!this.allowed(req, where.session)) {
      return page(res, 403, "Not yours to see", "This preview belongs to another session, or your access to it expired: open it again from the playground's page.");
    }
    // Relative links of the application's pages need the slash.
    if (where.rest === "") return redirect(res, `${where.prefix}/${url.search}`, 308);
    const upstream = this.upstream(where);
    if (!upstream) return page(res, 404, "No such session", "This session has ended, or its container is not running.");
    this.relay(req, res, upstream, `${where.rest}${url.search}`);
  }

  /** An Upgrade request (a WebSocket) to the preview listener: relayed as bytes once the container's server accepts the connection. */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on("error", () => socket.destroy());
    const url = new URL(req.url ?? "/", "http://preview");
    const where = parsePreviewPath(url.pathname);
    const upstream = where && this.allowed(req, where.session) ? this.upstream(where) : undefined;
    if (!where || !upstream) {
      socket.end("HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
      return;
    }
    const target = net.connect({ host: upstream.ip, port: upstream.port, timeout: CONNECT_TIMEOUT_MS });
    target.on("error", () => socket.destroy());
    socket.on("close", () => target.destroy());
    target.on("close", () => socket.destroy());
    target.once("connect", () => {
      target.setTimeout(0);
      const headers = upstreamHeaders(req.headers, upstream, this.browser(req), true);
      const lines = [`${req.method} ${where.rest || "/"}${url.search} HTTP/1.1`];
      for (const [name, value] of Object.entries(headers)) for (const v of [value].flat()) if (v !== undefined) lines.push(`${name}: ${v}`);
      target.write(`${lines.join("\r\n")}\r\n\r\n`);
      if (head.length) target.write(head);
      target.pipe(socket);
      socket.pipe(target);
    });
    target.once("timeout", () => target.destroy());
  }

  /** A grant from the main origin: set the preview cookie, then go to the page without the grant in its address. */
  private redeem(req: IncomingMessage, res: ServerResponse, url: URL, where: PreviewPath, grant: string): void {
    url.searchParams.delete(GRANT_PARAM);
    const next = `${where.prefix}${where.rest || "/"}${url.search}`;
    if (this.grants.checkGrant(grant) !== where.session) {
      // A stale grant is no harm when the browser may come in anyway.
      if (this.allowed(req, where.session)) return redirect(res, next);
      return page(res, 403, "This link has expired", "Preview links are good for a minute: open the preview again from the playground's page.");
    }
    const cookie = this.grants.cookie(where.session);
    res.setHeader(
      "set-cookie",
      `${PREVIEW_COOKIE}=${cookie.value}; Path=/preview/${where.session}/; HttpOnly; SameSite=Lax; Max-Age=${cookie.maxAgeSeconds}${this.guard.secure(req) ? "; Secure" : ""}`,
    );
    redirect(res, next);
  }

  /** The student's own session cookie, or a preview cookie for this session. */
  private allowed(req: IncomingMessage, session: string): boolean {
    const secret = secretFromCookieHeader(req.headers.cookie);
    if (secret && this.registry.forCookie(secret)?.id === session) return true;
    for (const part of (req.headers.cookie ?? "").split(";")) {
      const eq = part.indexOf("=");
      if (eq > 0 && part.slice(0, eq).trim() === PREVIEW_COOKIE && this.grants.checkCookie(part.slice(eq + 1).trim()) === session) return true;
    }
    return false;
  }

  /** The running container a preview path is for. */
  private upstream(where: PreviewPath): Upstream | undefined {
    const session = this.registry.get(where.session);
    const ip = session?.state === "running" ? session.container?.ip : undefined;
    return ip ? { ip, port: where.port, prefix: where.prefix } : undefined;
  }

  private browser(req: IncomingMessage) {
    return { host: req.headers.host ?? "", proto: this.guard.secure(req) ? "https" : "http", address: this.guard.clientAddress(req) };
  }

  private relay(req: IncomingMessage, res: ServerResponse, to: Upstream, path: string): void {
    const outgoing = http.request({
      host: to.ip,
      port: to.port,
      method: req.method,
      path,
      headers: upstreamHeaders(req.headers, to, this.browser(req)),
      agent: false,
      timeout: CONNECT_TIMEOUT_MS,
    });
    outgoing.once("socket", (socket) => socket.once("connect", () => outgoing.setTimeout(0)));
    outgoing.once("timeout", () => outgoing.destroy(new Error("timed out")));
    outgoing.on("error", (error) => {
      if (res.headersSent) return void res.destroy();
      const refused = (error as NodeJS.ErrnoException).code === "ECONNREFUSED";
      page(res, 502, refused ? `Nothing listens on port ${to.port}` : "The container did not answer", refused ? `Start a server on port ${to.port} in your container, listening on all addresses (0.0.0.0), then reload.` : String(error.message));
    });
    outgoing.on("response", (answer) => {
      const headers = downstreamHeaders(answer.headers, to, req.headers.host ?? "");
      const html = /^text\/html\b/i.test(String(answer.headers["content-type"] ?? "")) && !answer.headers["content-encoding"];
      const length = Number(answer.headers["content-length"] ?? NaN);
      if (html && req.method !== "HEAD" && (Number.isNaN(length) || length <= MAX_REWRITTEN_HTML)) return this.rewritten(answer, res, headers, to);
      res.writeHead(answer.statusCode ?? 502, answer.statusMessage, headers);
      answer.pipe(res);
    });
    res.on("close", () => outgoing.destroy());
    req.pipe(outgoing);
  }

  /** HTML read whole (up to a limit), its absolute links put under the prefix. */
  private rewritten(answer: IncomingMessage, res: ServerResponse, headers: http.OutgoingHttpHeaders, to: Upstream): void {
    const chunks: Buffer[] = [];
    let size = 0;
    let passing = false;
    answer.on("data", (chunk: Buffer) => {
      if (passing) return;
      chunks.push(chunk);
      size += chunk.length;
      if (size > MAX_REWRITTEN_HTML) {
        // Too large to hold: what came so far, then the rest, as they are.
        passing = true;
        delete headers["content-length"];
        res.writeHead(answer.statusCode ?? 502, answer.statusMessage, headers);
        res.write(Buffer.concat(chunks));
        answer.pipe(res);
      }
    });
    answer.on("end", () => {
      if (passing) return;
      const body = Buffer.from(rewriteHtml(Buffer.concat(chunks).toString("utf8"), to.prefix));
      res.writeHead(answer.statusCode ?? 502, answer.statusMessage, { ...headers, "content-length": body.length });
      res.end(body);
    });
    answer.on("error", () => res.destroy());
    this.log.debug({ prefix: to.prefix }, "rewrote a preview page's links");
  }
}

function redirect(res: ServerResponse, location: string, status = 303): void {
  res.writeHead(status, { location, "cache-control": "no-store", "referrer-policy": "no-referrer", "content-length": 0 });
  res.end();
}

/** A small page of the preview listener's own. */
function page(res: ServerResponse, status: number, title: string, text: string): void {
  const escape = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  const body = `<!doctype html><meta charset="utf-8"><title>${escape(title)}</title><body style="font-family:system-ui;background:#0f1419;color:#e6edf3;padding:2rem"><h1>${escape(title)}</h1><p>${escape(text)}</p>`;
  res.writeHead(status, { "content-type": "text/html; charset=utf-8", "content-length": Buffer.byteLength(body), "cache-control": "no-store" });
  res.end(body);
}
