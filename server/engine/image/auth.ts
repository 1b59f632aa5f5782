// Registry authentication, as Docker does it.
//
// A registry that wants credentials answers 401 with a WWW-Authenticate
// challenge. "Basic" means: send user:password with every request. "Bearer"
// (Docker Hub, most registries) means: go to the token server named in
// `realm`, ask for a token for `scope` (repository:library/alpine:pull), with
// your user:password if you have one or anonymously if not, and send that
// token instead. User names and passwords come from the config.json that
// `docker login` and `skopeo login --authfile` write.
import { readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { AuthenticationError, ImageError } from "./errors.ts";
import { getWithRetry, readBody, type TransportOptions } from "./transport.ts";

export interface AuthChallenge {
  /** Lower-cased: "bearer", "basic". */
  scheme: string;
  /** Parameter names lower-cased, values unquoted: realm, service, scope, error. */
  params: Record<string, string>;
  /** The rare single-token form (`Negotiate abc==`). */
  token68?: string;
}

const TOKEN_CHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;
const TOKEN68 = /^[A-Za-z0-9\-._~+/]+=*(?=[ \t]*(,|$))/;

/**
 * Parse a WWW-Authenticate value (RFC 9110 §11.6.1): one or more challenges,
 * each a scheme followed by comma-separated name=value parameters, values
 * either bare tokens or quoted strings (which may hold commas and \-escapes).
 * Several header lines joined with ", " parse the same way.
 */
export function parseChallenge(header: string): AuthChallenge[] {
  const challenges: AuthChallenge[] = [];
  let i = 0;
  const fail = (why: string): never => {
    throw new ImageError(`malformed WWW-Authenticate header (${why}): ${header.slice(0, 200)}`);
  };
  const skip = (chars: RegExp) => {
    while (i < header.length && chars.test(header[i])) i++;
  };
  const token = () => {
    const start = i;
    while (i < header.length && TOKEN_CHAR.test(header[i])) i++;
    return header.slice(start, i);
  };
  const quoted = () => {
    let value = "";
    for (i++; i < header.length; i++) {
      const c = header[i];
      if (c === '"') {
        i++;
        return value;
      }
      if (c === "\\") {
        i++;
        if (i >= header.length) break;
      }
      value += header[i];
    }
    return fail("unterminated quoted string");
  };

  let current: AuthChallenge | undefined;
  while (true) {
    skip(/[\s,]/);
    if (i >= header.length) break;
    const start = i;
    const name = token();
    if (name === "") fail(`unexpected "${header[i]}" at position ${i}`);
    skip(/[ \t]/);
    const isParam = current !== undefined && header[i] === "=" && !/^=*\s*(,|$)/.test(header.slice(i));
    if (isParam) {
      i++;
      skip(/[ \t]/);
      const value = header[i] === '"' ? quoted() : token();
      current!.params[name.toLowerCase()] = value;
      skip(/[ \t]/);
      if (i < header.length && header[i] !== ",") fail(`expected "," at position ${i}`);
      continue;
    }
    // A new challenge: scheme, then optionally a token68 or the first parameter.
    i = start + name.length;
    current = { scheme: name.toLowerCase(), params: {} };
    challenges.push(current);
    skip(/[ \t]/);
    // A token68 stands alone: it is followed by a comma or the end, never by "=value".
    const t68 = TOKEN68.exec(header.slice(i));
    if (t68) {
      current.token68 = t68[0];
      i += t68[0].length;
    }
  }
  return challenges;
}

// ── Credentials ──────────────────────────────────────────────────────────────

export interface Credentials {
  username: string;
  password: string;
}

/** The keys `docker login` has used for Docker Hub over the years. */
const DOCKER_HUB_KEYS = ["index.docker.io", "docker.io", "registry-1.docker.io"];

/** $DOCKER_CONFIG, else ~/.docker: where docker keeps config.json. */
export function dockerConfigDir(env: Record<string, string | undefined> = process.env): string {
  return env.DOCKER_CONFIG || path.join(os.homedir(), ".docker");
}

/**
 * The user name and password config.json holds for `host` ("docker.io",
 * "127.0.0.1:5000"), or undefined when there is none or no file.
 * Credential helpers (credsStore, credHelpers) are not consulted.
 */
export function loadCredentials(host: string, configDir = dockerConfigDir()): Credentials | undefined {
  const file = path.join(configDir, "config.json");
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new ImageError(`cannot read ${file}: ${(error as Error).message}`);
  }
  let config: { auths?: Record<string, unknown> };
  try {
    config = JSON.parse(text);
  } catch (error) {
    throw new ImageError(`cannot read ${file}: not valid JSON (${(error as Error).message})`);
  }
  const auths = config?.auths;
  if (typeof auths !== "object" || auths === null) return undefined;

  const wanted = host === "docker.io" ? DOCKER_HUB_KEYS : [host.toLowerCase()];
  for (const [key, entry] of Object.entries(auths)) {
    if (!wanted.includes(normaliseAuthKey(key))) continue;
    const found = entryCredentials(entry, file, key);
    if (found) return found;
  }
  return undefined;
}

/** "https://index.docker.io/v1/" → "index.docker.io"; "http://host:5000/v2" → "host:5000". */
function normaliseAuthKey(key: string): string {
  return key.replace(/^[a-z]+:\/\//i, "").split("/")[0].toLowerCase();
}

function entryCredentials(entry: unknown, file: string, key: string): Credentials | undefined {
  if (typeof entry !== "object" || entry === null) return undefined;
  const e = entry as Record<string, unknown>;
  if (typeof e.auth === "string" && e.auth !== "") {
    const decoded = Buffer.from(e.auth, "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon <= 0) throw new ImageError(`${file}: the "auth" entry for ${key} is not base64 of user:password`);
    return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }
  if (typeof e.username === "string" && typeof e.password === "string" && e.username !== "") {
    return { username: e.username, password: e.password };
  }
  return undefined;
}

export function basicAuthorization(credentials: Credentials): string {
  return `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString("base64")}`;
}

// ── Bearer tokens ────────────────────────────────────────────────────────────

/** Lifetime the distribution spec tells clients to assume when none is given. */
const DEFAULT_TOKEN_SECONDS = 60;
const MAX_TOKEN_RESPONSE = 1024 * 1024;

interface CachedToken {
  token: string;
  expiresAt: number;
}

/** Bearer tokens, fetched from token servers and kept until shortly before they expire. */
export class TokenCache {
  private tokens = new Map<string, CachedToken>();

  constructor(private transport: TransportOptions) {}

  /**
   * A token for `scope` from the token server a Bearer challenge names.
   * `registryHost` is only for error messages.
   */
  async get(
    challenge: AuthChallenge,
    scope: string,
    credentials: Credentials | undefined,
    registryHost: string,
  ): Promise<string> {
    const { realm, service } = challenge.params;
    if (!realm) throw new AuthenticationError(`authentication to ${registryHost} failed: Bearer challenge has no realm`);
    const key = JSON.stringify([realm, service, scope, credentials?.username]);
    const cached = this.tokens.get(key);
    if (cached && cached.expiresAt > Date.now()) return cached.token;

    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw new AuthenticationError(`authentication to ${registryHost} failed: invalid token realm "${realm}"`);
    }
    if (service) url.searchParams.set("service", service);
    url.searchParams.set("scope", scope);
    const headers: Record<string, string> = { Accept: "application/json" };
    if (credentials) headers.Authorization = basicAuthorization(credentials);

    const who = credentials ? `as ${credentials.username}` : "anonymously";
    const body = await getWithRetry(url, `token server ${url.host}`, this.transport, {
      headers: () => headers,
      consume: async (response) => {
        if (response.status === 401 || response.status === 403) {
          response.body.resume();
          throw new AuthenticationError(
            `authentication to ${registryHost} failed: token server ${url.host} refused ${who} ` +
              `(${response.status})` +
              (credentials ? "; check the password in config.json" : "; log in with docker login or skopeo login"),
          );
        }
        if (response.status !== 200) {
          response.body.resume();
          throw new AuthenticationError(
            `authentication to ${registryHost} failed: token server ${url.host} answered ${response.status}`,
          );
        }
        return readBody(response, MAX_TOKEN_RESPONSE, `token response from ${url.host}`);
      },
    });

    const token = parseTokenResponse(body, registryHost);
    const lifetime = token.expiresIn ?? DEFAULT_TOKEN_SECONDS;
    // Renew a little early so a token does not expire between cache and use.
    this.tokens.set(key, { token: token.token, expiresAt: Date.now() + lifetime * 1000 * 0.9 - 1000 });
    return token.token;
  }

  /** Forget a token the registry rejected, so the next `get` asks again. */
  forget(challenge: AuthChallenge, scope: string, credentials: Credentials | undefined): void {
    const { realm, service } = challenge.params;
    this.tokens.delete(JSON.stringify([realm, service, scope, credentials?.username]));
  }
}

/** The token server answers {token} or {access_token} (OAuth2 spelling), maybe expires_in. */
export function parseTokenResponse(body: Buffer, registryHost: string): { token: string; expiresIn?: number } {
  const fail = (why: string): never => {
    throw new AuthenticationError(`authentication to ${registryHost} failed: token server sent ${why}`);
  };
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(body.toString("utf8"));
  } catch {
    return fail("a response that is not JSON");
  }
  const token = doc?.token ?? doc?.access_token;
  if (typeof token !== "string" || token === "") return fail("no token");
  // It goes into a header: nothing that could end the line or the header.
  if (!/^[\x21-\x7e]+$/.test(token) || token.length > 64 * 1024) return fail("a token with invalid characters");
  const expiresIn = doc.expires_in;
  return typeof expiresIn === "number" && expiresIn > 0 ? { token, expiresIn } : { token };
}
