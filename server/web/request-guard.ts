// Who a request comes from, and whether it is for us.
//
// DNS rebinding: a web page on evil.example can make a student's browser
// resolve evil.example to the playground's address and then talk to it as
// "evil.example", same-origin with the attacker's page. The browser still
// sends `Host: evil.example`, so a request whose Host is not one of this
// server's own names or addresses (or PLAYGROUND_ALLOWED_HOSTS) is refused.
//
// Behind a TLS proxy (PLAYGROUND_TRUST_PROXY=1), the client's address and the
// scheme come from X-Forwarded-For and X-Forwarded-Proto; otherwise those
// headers are the client's own words and are ignored.
import type { IncomingMessage } from "node:http";
import os from "node:os";

export interface GuardSettings {
  allowedHosts: string[];
  trustProxy: boolean;
  tls: boolean;
}

const ADDRESSES_TTL_MS = 10_000;

export class RequestGuard {
  private own?: { names: Set<string>; at: number };

  constructor(private readonly settings: GuardSettings) {}

  /** Whether the Host header names this server. A request without one (HTTP/1.0, a health probe) has no name to misuse. */
  hostAllowed(req: IncomingMessage): boolean {
    const host = req.headers.host;
    if (!host) return true;
    return this.ownNames().has(hostnameOf(host));
  }

  /** The client's address: the socket's peer, or with a trusted proxy the first address it forwarded. */
  clientAddress(req: IncomingMessage): string {
    const forwarded = req.headers["x-forwarded-for"];
    if (this.settings.trustProxy && typeof forwarded === "string" && forwarded.trim()) return forwarded.split(",")[0].trim();
    return req.socket.remoteAddress ?? "unknown";
  }

  /** Whether the browser reached us over TLS (then cookies are Secure). */
  secure(req: IncomingMessage): boolean {
    if (this.settings.tls) return true;
    return this.settings.trustProxy && req.headers["x-forwarded-proto"] === "https";
  }

  /** localhost, the machine's hostname, every address of its interfaces, and the configured names. */
  private ownNames(): Set<string> {
    const now = Date.now();
    if (this.own && now - this.own.at < ADDRESSES_TTL_MS) return this.own.names;
    const names = new Set(["localhost", os.hostname().toLowerCase(), ...this.settings.allowedHosts.map((h) => hostnameOf(h))]);
    for (const list of Object.values(os.networkInterfaces())) {
      for (const address of list ?? []) names.add(address.address.toLowerCase());
    }
    this.own = { names, at: now };
    return names;
  }
}

/** "Example.org:3000" → "example.org"; "[::1]:3000" → "::1". */
export function hostnameOf(host: string): string {
  const trimmed = host.trim().toLowerCase();
  if (trimmed.startsWith("[")) return trimmed.slice(1, trimmed.indexOf("]"));
  const colon = trimmed.indexOf(":");
  // More than one colon without brackets: a bare IPv6 address.
  if (colon >= 0 && trimmed.indexOf(":", colon + 1) < 0) return trimmed.slice(0, colon);
  return trimmed;
}
