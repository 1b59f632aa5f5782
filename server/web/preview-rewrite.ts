// What the port preview changes on its way through (preview-proxy.ts), so an
// application in the container that thinks it sits at "/" of its own server
// works under /preview/<session>/<port>/ of the preview origin:
//   - to the application: hop-by-hop headers and the playground's own cookies
//     removed (a student's server never sees a session cookie, the
//     instructor's least of all); Host is the container's address, as if it
//     were reached directly, with the browser's view in X-Forwarded-*;
//   - from it: redirects to "/…" or to its own address put under the prefix;
//     its cookies kept under the prefix, never for another domain, and never
//     named like ours; headers that act on the whole host (HSTS,
//     Clear-Site-Data: cookies are shared by every port of a host) dropped;
//   - in its HTML: absolute links (href="/…", src="/…") put under the prefix.
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http";

/** Headers that concern one connection, never to be forwarded (RFC 9110 7.6.1). */
const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"]);
/** Response headers that would act on the whole host, the playground's own pages included. */
const HOST_WIDE = new Set(["strict-transport-security", "clear-site-data", "alt-svc"]);
/** Cookies named so belong to the playground: never forwarded, never set by a preview. */
const OURS = /^pg_/i;

export interface Upstream {
  /** The container's address and port. */
  ip: string;
  port: number;
  /** "/preview/<session>/<port>", without a trailing slash. */
  prefix: string;
}

/** The browser's request headers as the application gets them. */
export function upstreamHeaders(headers: IncomingHttpHeaders, to: Upstream, browser: { host: string; proto: string; address: string }, upgrade = false): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || name === "host" || name.startsWith("x-forwarded-")) continue;
    out[name] = value;
  }
  if (upgrade) {
    out.connection = "Upgrade";
    out.upgrade = headers.upgrade;
  }
  const cookie = withoutOurCookies(headers.cookie);
  if (cookie) out.cookie = cookie;
  else delete out.cookie;
  // Plain bytes: the HTML can then be rewritten (the container is a hop away on the bridge).
  delete out["accept-encoding"];
  out.host = `${to.ip}:${to.port}`;
  out["x-forwarded-host"] = browser.host;
  out["x-forwarded-proto"] = browser.proto;
  out["x-forwarded-for"] = browser.address;
  out["x-forwarded-prefix"] = to.prefix;
  return out;
}

function withoutOurCookies(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const kept = header
    .split(";")
    .map((c) => c.trim())
    .filter((c) => c && !OURS.test(c.split("=")[0].trim()));
  return kept.length ? kept.join("; ") : undefined;
}

/** The application's response headers as the browser gets them. */
export function downstreamHeaders(headers: IncomingHttpHeaders, to: Upstream, previewHost: string): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || HOST_WIDE.has(name)) continue;
    if (name === "location" && typeof value === "string") out.location = rewriteLocation(value, to, previewHost);
    else if (name === "set-cookie") {
      const cookies = (Array.isArray(value) ? value : [value]).map((c) => rewriteSetCookie(c, to.prefix)).filter((c): c is string => c !== undefined);
      if (cookies.length) out["set-cookie"] = cookies;
    } else out[name] = value;
  }
  return out;
}

/** A redirect to "/x", or to the application's own address (or the preview origin) at "/x", goes to PREFIX/x. */
export function rewriteLocation(location: string, to: Upstream, previewHost: string): string {
  const own = `http://${to.ip}:${to.port}`;
  let url: URL;
  try {
    url = new URL(location, `${own}/`);
  } catch {
    return location;
  }
  const rootRelative = location.startsWith("/") && !location.startsWith("//");
  const absoluteToUs = /^[a-z][a-z0-9+.-]*:/i.test(location) && (url.host === `${to.ip}:${to.port}` || url.host === previewHost);
  if (!rootRelative && !absoluteToUs) return location;
  // An application that honours X-Forwarded-Prefix already put it there.
  if (url.pathname === to.prefix || url.pathname.startsWith(`${to.prefix}/`)) return `${url.pathname}${url.search}${url.hash}`;
  return `${to.prefix}${url.pathname}${url.search}${url.hash}`;
}

/** A Set-Cookie kept to the preview's path and host; undefined when it is dropped (named like the playground's own). */
export function rewriteSetCookie(cookie: string, prefix: string): string | undefined {
  const [pair, ...attributes] = cookie.split(";");
  const name = pair.split("=")[0].trim();
  if (!name || OURS.test(name)) return undefined;
  const kept: string[] = [];
  let path = "/";
  for (const attribute of attributes) {
    const [key, ...rest] = attribute.split("=");
    const k = key.trim().toLowerCase();
    if (k === "domain") continue;
    if (k === "path") {
      const value = rest.join("=").trim();
      path = value.startsWith("/") ? value : "/";
      continue;
    }
    kept.push(attribute.trim());
  }
  const underPrefix = path === prefix || path.startsWith(`${prefix}/`) ? path : `${prefix}${path}`;
  return [pair.trim(), ...kept, `Path=${underPrefix}`].join("; ");
}

/** HTML larger than this is passed on as it is. */
export const MAX_REWRITTEN_HTML = 2 * 1024 * 1024;

/** href="/x", src="/x", action="/x" (quoted either way) become PREFIX/x; "//host" and relative links stay. */
export function rewriteHtml(html: string, prefix: string): string {
  return html.replace(/(\s(?:href|src|action|formaction|poster)\s*=\s*)(["'])\/(?!\/)/gi, (_m, attribute: string, quote: string) => `${attribute}${quote}${prefix}/`);
}
