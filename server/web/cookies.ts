// The cookie that ties a browser to its session. It holds a random secret
// (32 bytes); the server keeps only its hash. httpOnly: page scripts cannot
// read it, so an injected script cannot carry it off. SameSite=Lax: another
// site cannot make the browser open a socket that attaches to the session.
import { randomBytes } from "node:crypto";

export const SESSION_COOKIE = "pg_session";

/** The shape of a secret we issued: anything else in the cookie is ignored. */
const SECRET = /^[A-Za-z0-9_-]{43}$/;

export function newSecret(): string {
  return randomBytes(32).toString("base64url");
}

/** The session secret in a Cookie header, if it holds a well-formed one. */
export function secretFromCookieHeader(header: string | undefined): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() !== SESSION_COOKIE) continue;
    const value = part.slice(eq + 1).trim();
    if (SECRET.test(value)) return value;
  }
  return undefined;
}

/** Secure over TLS: the browser then never sends it over plain HTTP. */
export function sessionCookie(secret: string, maxAgeSeconds: number, secure = false): string {
  return `${SESSION_COOKIE}=${secret}; Path=/; HttpOnly; SameSite=Lax; Max-Age=${maxAgeSeconds}${secure ? "; Secure" : ""}`;
}
