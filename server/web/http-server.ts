// The main HTTP (or HTTPS) server: /metrics, the JSON API and the way into
// port previews first, then the pages (static-pages.ts); socket.io attaches to it too. The
// previews themselves have a listener of their own (preview-server.ts). Every
// request must name this server in its Host header (request-guard.ts), and
// over TLS the browser is told to keep to HTTPS (HSTS).
import fs from "node:fs";
import http from "node:http";
import https from "node:https";
import type { Logger } from "pino";
import { sendJson } from "./http-json.ts";
import type { RequestGuard } from "./request-guard.ts";

export type RequestHandler = (req: http.IncomingMessage, res: http.ServerResponse) => void | Promise<void>;

export interface WebServerParts {
  /** Tried in order, before the pages: each handles the request if it is one of its own (and says so). */
  routes: ((req: http.IncomingMessage, res: http.ServerResponse) => boolean)[];
  /** The pages, or none (PLAYGROUND_WEB_UI=0). */
  pages?: RequestHandler;
  guard: RequestGuard;
  tls?: { cert: string; key: string };
  log: Logger;
}

const HSTS = "max-age=15552000";

export function createWebServer(parts: WebServerParts): http.Server {
  const handle = (req: http.IncomingMessage, res: http.ServerResponse) => {
    if (!parts.guard.hostAllowed(req)) {
      parts.log.warn({ host: req.headers.host, url: req.url }, "request for a host that is not this server's: refused");
      sendJson(res, 421, { error: `this playground does not answer to "${req.headers.host}": set PLAYGROUND_ALLOWED_HOSTS to the names it is reached by` });
      return;
    }
    if (parts.tls) res.setHeader("strict-transport-security", HSTS);
    for (const route of parts.routes) if (route(req, res)) return;
    if (!parts.pages) {
      sendJson(res, 404, { error: "the web pages are turned off (PLAYGROUND_WEB_UI=0); only /api/ and socket.io are served" });
      return;
    }
    Promise.resolve(parts.pages(req, res)).catch((error) => {
      parts.log.error({ err: String(error), url: req.url }, "page request failed");
      if (!res.headersSent) sendJson(res, 500, { error: "internal error" });
    });
  };
  return listener(parts.tls, handle);
}

/** An HTTP server, or an HTTPS one with the certificate and key files. */
export function listener(tls: { cert: string; key: string } | undefined, handle: http.RequestListener): http.Server {
  if (!tls) return http.createServer(handle);
  return https.createServer({ cert: fs.readFileSync(tls.cert), key: fs.readFileSync(tls.key) }, handle);
}
