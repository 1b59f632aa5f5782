// The port preview's own listener (see preview-proxy.ts for why it is
// separate): the same Host check and TLS as the main server, and nothing
// but /preview/…, HTTP and WebSocket.
import type http from "node:http";
import type { Logger } from "pino";
import { listener } from "./http-server.ts";
import type { PreviewProxy } from "./preview-proxy.ts";
import type { RequestGuard } from "./request-guard.ts";

const HSTS = "max-age=15552000";

export function createPreviewServer(parts: { proxy: PreviewProxy; guard: RequestGuard; tls?: { cert: string; key: string }; log: Logger }): http.Server {
  const server = listener(parts.tls, (req, res) => {
    if (!parts.guard.hostAllowed(req)) {
      res.writeHead(421, { "content-type": "text/plain" }).end(`this playground does not answer to "${req.headers.host}"`);
      return;
    }
    if (parts.tls) res.setHeader("strict-transport-security", HSTS);
    try {
      parts.proxy.handle(req, res);
    } catch (error) {
      parts.log.error({ err: String(error), url: req.url }, "preview request failed");
      if (!res.headersSent) res.writeHead(500).end();
      else res.destroy();
    }
  });
  server.on("upgrade", (req, socket, head) => {
    if (!parts.guard.hostAllowed(req)) return void socket.destroy();
    parts.proxy.upgrade(req, socket, head);
  });
  // A client that goes away mid-request is no error of ours.
  server.on("clientError", (_error, socket) => socket.destroy());
  return server;
}
