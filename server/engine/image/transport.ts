// HTTP for the registry client: one GET with connect and idle timeouts,
// redirects followed by hand, and a retry loop with exponential backoff.
//
// Why by hand rather than fetch's defaults: a registry often redirects blob
// downloads to a storage host (S3, a CDN), and our Authorization header must
// not travel there; a download that stalls must time out rather than hang a
// classroom; and a 429 or 503 should be retried the way the server asks.
import http from "node:http";
import https from "node:https";
import { isIPv4 } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { ImageError, RegistryError, RegistryUnreachableError, TooLargeError } from "./errors.ts";

export interface TransportOptions {
  /** Time to open the TCP connection. */
  connectTimeoutMs: number;
  /** Longest silence once connected: no response headers or no body bytes for this long. */
  idleTimeoutMs: number;
  /**
   * Retries after the first attempt, for 429, 5xx and network errors (a
   * refused loopback connection gets one quick retry only, a name not found none).
   */
  retries: number;
  /** First backoff delay; it doubles each retry up to maxDelayMs. */
  baseDelayMs: number;
  maxDelayMs: number;
  /** A Retry-After longer than this is not waited for: the request fails with the server's advice. */
  maxRetryAfterMs: number;
  /** Whether plain HTTP may be spoken to this host:port (redirect targets included). */
  allowHttp(host: string): boolean;
}

export const DEFAULT_TRANSPORT: Omit<TransportOptions, "allowHttp"> = {
  connectTimeoutMs: 15_000,
  idleTimeoutMs: 30_000,
  retries: 4,
  baseDelayMs: 500,
  maxDelayMs: 8_000,
  maxRetryAfterMs: 60_000,
};

const MAX_REDIRECTS = 5;
const USER_AGENT = "container-playground/0.1";

export interface Response {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** Where the answer finally came from, after redirects. */
  url: URL;
  body: http.IncomingMessage;
}

export interface Attempt<T> {
  /** Request headers; called before every attempt, so a retry can ask for a different Range. */
  headers(): Record<string, string> | Promise<Record<string, string>>;
  /**
   * Read what the caller needs from the response and return it. Throwing a
   * retryable network error (a reset or stall mid-body) starts another attempt.
   */
  consume(response: Response): Promise<T>;
}

/** The status codes worth asking again for: rate limiting and server trouble. */
function retryableStatus(status: number): boolean {
  return status === 429 || status === 408 || (status >= 500 && status !== 501 && status !== 505);
}

/**
 * GET `url` with retries. `label` names the peer in errors ("registry
 * 127.0.0.1:5000"). A retryable status that persists is handed to `consume`
 * like any other answer, so the caller can word the error.
 */
export async function getWithRetry<T>(
  url: URL,
  label: string,
  options: TransportOptions,
  attempt: Attempt<T>,
): Promise<T> {
  let retriedQuickly = false;
  for (let n = 0; ; n++) {
    const lastChance = n >= options.retries;
    try {
      const response = await get(url, await attempt.headers(), label, options);
      if (retryableStatus(response.status) && !lastChance) {
        const wait = retryAfterMs(response.headers["retry-after"]);
        if (wait === undefined || wait <= options.maxRetryAfterMs) {
          response.body.resume();
          await sleep(wait ?? backoff(n, options));
          continue;
        }
      }
      return await attempt.consume(response);
    } catch (error) {
      const kind = retryKind(error);
      if (kind === "never" || lastChance || (kind === "once" && retriedQuickly)) throw asUnreachable(error, label);
      if (kind === "once") retriedQuickly = true;
      await sleep(kind === "once" ? Math.min(options.baseDelayMs, QUICK_RETRY_MS) : backoff(n, options));
    }
  }
}

function backoff(n: number, options: TransportOptions): number {
  return Math.min(options.baseDelayMs * 2 ** n, options.maxDelayMs);
}

/** Retry-After is either delay-seconds or an HTTP date (RFC 9110 §10.2.3). */
export function retryAfterMs(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** One GET, following up to five redirects, each hop checked. */
async function get(url: URL, headers: Record<string, string>, label: string, options: TransportOptions) {
  let current = url;
  for (let hop = 0; ; hop++) {
    checkScheme(current, options);
    // Credentials are for the registry we asked, never for a storage host it sends us to.
    const sameOrigin = current.origin === url.origin;
    const hopHeaders = sameOrigin ? headers : withoutAuthorization(headers);
    const response = await getOnce(current, hopHeaders, options);
    const location = response.headers.location;
    if (![301, 302, 303, 307, 308].includes(response.status) || !location) return response;
    response.body.resume();
    if (hop >= MAX_REDIRECTS) throw new RegistryError(`${label} redirected more than ${MAX_REDIRECTS} times`);
    try {
      current = new URL(location, current);
    } catch {
      throw new RegistryError(`${label} redirected to an invalid address`);
    }
  }
}

function checkScheme(url: URL, options: TransportOptions): void {
  if (url.protocol === "https:") return;
  if (url.protocol === "http:" && options.allowHttp(url.host)) return;
  throw new RegistryError(
    `refusing ${url.protocol.replace(":", "")} to ${url.host}: only https is allowed ` +
      `(list the host in PLAYGROUND_INSECURE_REGISTRIES to allow plain http)`,
  );
}

function withoutAuthorization(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).filter(([k]) => k.toLowerCase() !== "authorization"));
}

function getOnce(url: URL, headers: Record<string, string>, options: TransportOptions): Promise<Response> {
  return new Promise((resolve, reject) => {
    const client = url.protocol === "https:" ? https : http;
    let body: http.IncomingMessage | undefined;
    const req = client.request(url, {
      method: "GET",
      headers: { "User-Agent": USER_AGENT, ...headers },
      timeout: options.connectTimeoutMs,
    });
    // Once connected, the timeout becomes an idle timeout: it fires when
    // neither headers nor body bytes have arrived for idleTimeoutMs.
    req.on("socket", (socket) => {
      const idle = () => req.setTimeout(options.idleTimeoutMs);
      if (socket.connecting) socket.once("connect", idle);
      else idle();
    });
    req.on("timeout", () => {
      const error = Object.assign(new Error(`no answer from ${url.host} for too long`), { code: "ETIMEDOUT" });
      body?.destroy(error);
      req.destroy(error);
    });
    req.on("error", reject);
    req.on("response", (res) => {
      body = res;
      resolve({ status: res.statusCode ?? 0, headers: res.headers, url, body: res });
    });
    req.end();
  });
}

/**
 * Read a whole (small) body, refusing it as soon as it grows past `max`
 * bytes: an endless or oversized answer is cut off, never buffered.
 */
export async function readBody(response: Response, max: number, what: string): Promise<Buffer> {
  const declared = Number(response.headers["content-length"]);
  if (Number.isFinite(declared) && declared > max) {
    response.body.destroy();
    throw new TooLargeError(`${what} is ${declared} bytes, more than the ${max} allowed`);
  }
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of response.body as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > max) {
      response.body.destroy();
      throw new TooLargeError(`${what} is larger than the ${max} bytes allowed`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, total);
}

/**
 * Network errors worth waiting out: the connection was lost, timed out or
 * could not be routed, all of which a flaky network or a busy server clears
 * up given time. ENOTFOUND (the name does not exist) is not among them:
 * asking the resolver again gives the same answer.
 */
const RETRYABLE_CODES = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "ETIMEDOUT",
  "EPIPE",
  "EAI_AGAIN",
  "ENETUNREACH",
  "EHOSTUNREACH",
  "ECONNABORTED",
  "UND_ERR_SOCKET",
]);

/** The pause before the one retry of a refused loopback connection. */
const QUICK_RETRY_MS = 200;

/**
 * How a failed attempt is retried: with growing backoff, once after a short
 * pause, or not at all. A refused connection to this very machine means no
 * process listens on that port; one more try covers a local registry that is
 * just restarting, but backing off for seconds would only make the student
 * wait for the same answer.
 */
function retryKind(error: unknown): "backoff" | "once" | "never" {
  const code = (error as NodeJS.ErrnoException)?.code ?? "";
  if (code === "ECONNREFUSED" && refusedOnLoopback(error)) return "once";
  return RETRYABLE_CODES.has(code) ? "backoff" : "never";
}

/** Whether every address the connection was tried on is a loopback one (127.0.0.0/8, ::1). */
function refusedOnLoopback(error: unknown): boolean {
  // With several addresses to try (localhost: ::1 and 127.0.0.1), Node reports an AggregateError.
  const attempts = error instanceof AggregateError ? error.errors : [error];
  return (
    attempts.length > 0 &&
    attempts.every((e) => {
      const address = String((e as { address?: unknown })?.address ?? "").replace(/^::ffff:/i, "");
      return address === "::1" || (isIPv4(address) && address.startsWith("127."));
    })
  );
}

/** Node's network errors, reworded as one line that names the peer. */
function asUnreachable(error: unknown, label: string): unknown {
  if (error instanceof ImageError) return error;
  const code = (error as NodeJS.ErrnoException)?.code ?? "";
  const tls = code === "EPROTO" || code.startsWith("ERR_SSL") || /CERT|SELF_SIGNED|UNABLE_TO_VERIFY/.test(code);
  // Only network failures; a disk error while consuming a body stays what it is.
  if (!(error instanceof Error) || !(RETRYABLE_CODES.has(code) || code === "ENOTFOUND" || tls)) return error;
  // OpenSSL's messages run over several lines of internals; keep the reason.
  // An AggregateError (every address of a name failed) has no message of its own: take its first error's.
  const message = error.message || (error instanceof AggregateError ? String(error.errors[0]?.message ?? "") : "");
  const detail = /SSL routines:[^:]*:([^:\n]+)/.exec(message)?.[1] ?? message.split("\n")[0];
  let why = detail;
  if (code === "ENOTFOUND") why = `host name not found (${detail})`;
  else if (code === "ECONNREFUSED") why = `connection refused (${detail})`;
  else if (code === "ETIMEDOUT") why = `timed out (${detail})`;
  else if (code === "EPROTO" || code.startsWith("ERR_SSL")) {
    why = `TLS handshake failed (${detail}); if it speaks plain http, list it in PLAYGROUND_INSECURE_REGISTRIES`;
  } else if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY/.test(code)) why = `TLS certificate not trusted (${detail})`;
  return new RegistryUnreachableError(`cannot reach ${label}: ${why}`, { cause: error });
}
