// Cross-site protection for socket.io. A page on another web site could open a
// WebSocket to the playground from a student's browser (WebSockets are not
// bound by CORS). A browser always sends the page's Origin with its requests
// here, so a request whose Origin is not this server itself is refused.
// Programs that are not browsers send no Origin and are let through: they
// hold no student's cookie to misuse. Behind a reverse proxy, the proxy must
// pass the browser's Host header on (nginx: `proxy_set_header Host $host`).
import type { IncomingMessage } from "node:http";

export function sameOrigin(req: IncomingMessage): boolean {
  const origin = req.headers.origin;
  if (!origin) return true;
  try {
    return new URL(origin).host === req.headers.host;
  } catch {
    return false;
  }
}
