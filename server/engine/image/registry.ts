// A client for the Docker Registry HTTP API V2 (the OCI distribution spec):
// the few GETs a pull needs.
//
//   GET /v2/                              is this a registry? which auth does it want?
//   GET /v2/REPO/manifests/TAG|DIGEST     the manifest or index
//   GET /v2/REPO/blobs/DIGEST             a config or layer, addressed by its sha256
//
// Everything a registry sends is checked before it is used: manifests against
// their digest and a size cap, blobs against the size and sha256 the manifest
// promised. Content addressing is what makes a pull trustworthy even from a
// mirror or over plain HTTP: a blob that hashes right is the blob we asked for.
import { createHash } from "node:crypto";
import {
  type AuthChallenge,
  basicAuthorization,
  type Credentials,
  loadCredentials,
  parseChallenge,
  TokenCache,
} from "./auth.ts";
import {
  AuthenticationError,
  DigestMismatchError,
  ImageError,
  ImageNotFoundError,
  ManifestError,
  RegistryError,
  TagNotFoundError,
  TooLargeError,
} from "./errors.ts";
import {
  hostPlatform,
  type ImageManifest,
  MANIFEST_ACCEPT,
  MAX_MANIFEST_BYTES,
  type Manifest,
  parseManifest,
  selectPlatform,
} from "./manifest.ts";
import { DOCKER_HUB, familiarName } from "./reference.ts";
import { DEFAULT_TRANSPORT, getWithRetry, readBody, type Response, type TransportOptions } from "./transport.ts";
import type { Descriptor, ImageReference, Platform } from "./types.ts";
import { DIGEST } from "./digest.ts";

/** Docker Hub's registry API lives on a different host than its name. */
const DOCKER_HUB_HOST = "registry-1.docker.io";
const MAX_ERROR_BODY = 64 * 1024;

export interface RegistryClientOptions {
  /** Fetch docker.io images from here instead (e.g. "http://127.0.0.1:5000"), like dockerd's registry-mirrors. */
  mirror?: string;
  /** host[:port] entries that may be spoken to over plain HTTP. */
  insecureRegistries: string[];
  /** Loopback registries (127.0.0.0/8, localhost) speak plain HTTP too, as with dockerd. Default true. */
  loopbackIsInsecure?: boolean;
  /** Where config.json with registry credentials lives; default $DOCKER_CONFIG or ~/.docker. */
  dockerConfigDir?: string;
  /** Timeouts and retry policy; the defaults suit real registries, tests shorten them. */
  transport?: Partial<Omit<TransportOptions, "allowHttp">>;
}

export interface FetchedManifest {
  mediaType: string;
  /** sha256 of `bytes`: the manifest's identity. */
  digest: string;
  bytes: Buffer;
  manifest: Manifest;
}

export interface ResolvedImage {
  /** The index the tag pointed to, when it pointed to one. */
  indexDigest?: string;
  manifestDigest: string;
  manifest: ImageManifest;
  mediaType: string;
  bytes: Buffer;
  /** The platform of the index entry chosen; absent for a single-platform image. */
  platform?: Platform;
}

/** Where requests for one image go, and what to call that place in messages. */
interface Endpoint {
  base: URL;
  /** host[:port] actually spoken to: registry-1.docker.io, the mirror's, or the reference's. */
  host: string;
  /** The name config.json knows the credentials under. */
  credentialsHost: string;
}

/**
 * A blob that hashed wrong after its download was continued with a Range
 * request: the registry may have changed the blob between the two responses.
 * Worth one more try from the first byte.
 */
export class ResumedBlobMismatchError extends DigestMismatchError {}

/** A 401 from the registry, carried out of the retry loop to the auth logic. */
interface Unauthorized {
  unauthorized: string;
}

export class RegistryClient {
  private readonly transport: TransportOptions;
  private readonly tokens: TokenCache;
  private readonly mirror?: URL;
  private readonly insecure: Set<string>;
  /** Challenges from GET /v2/, per registry origin: asked once per client. */
  private readonly pings = new Map<string, Promise<AuthChallenge[]>>();
  private readonly credentials = new Map<string, Credentials | undefined>();

  constructor(private readonly options: RegistryClientOptions) {
    this.insecure = new Set(options.insecureRegistries.map((h) => h.replace(/^https?:\/\//i, "").replace(/\/+$/, "").toLowerCase()));
    if (options.mirror) {
      this.mirror = new URL(options.mirror);
      if (this.mirror.protocol !== "http:" && this.mirror.protocol !== "https:") {
        throw new ImageError(`registry mirror must be an http:// or https:// URL, got ${options.mirror}`);
      }
    }
    const mirrorHttpHost = this.mirror?.protocol === "http:" ? this.mirror.host : undefined;
    this.transport = {
      ...DEFAULT_TRANSPORT,
      ...options.transport,
      allowHttp: (host) => this.isInsecure(host) || host === mirrorHttpHost,
    };
    this.tokens = new TokenCache(this.transport);
  }

  /** Fetch a manifest or index by tag or digest, verified against its digest. */
  async getManifest(ref: ImageReference, tagOrDigest: string): Promise<FetchedManifest> {
    const byDigest = tagOrDigest.includes(":");
    if (byDigest && !DIGEST.test(tagOrDigest)) {
      throw new ManifestError(`invalid manifest digest ${tagOrDigest.slice(0, 100)}`);
    }
    const endpoint = this.endpoint(ref);
    const what = byDigest ? `manifest ${tagOrDigest}` : `tag "${tagOrDigest}"`;
    const got = await this.send(ref, `manifests/${tagOrDigest}`, () => ({ Accept: MANIFEST_ACCEPT }), async (res) => {
      if (res.status !== 200) throw await statusError(res, endpoint, ref, what);
      const bytes = await readBody(res, MAX_MANIFEST_BYTES, `manifest of ${familiarName(ref)}`);
      return { bytes, contentType: res.headers["content-type"], announced: header(res, "docker-content-digest") };
    }).catch(async (error) => {
      // Some registries (docker-registry among them) answer MANIFEST_UNKNOWN for a
      // repository that does not exist at all; the tag list tells the two apart.
      if (error instanceof TagNotFoundError && (await this.repositoryMissing(ref))) {
        throw new ImageNotFoundError(`image not found: repository ${ref.repository} does not exist on ${endpoint.host}`);
      }
      throw error;
    });

    const digest = sha256(got.bytes);
    if (byDigest && digest !== tagOrDigest) {
      throw new DigestMismatchError(
        `manifest ${tagOrDigest} from ${endpoint.host} has sha256 ${digest}: the registry sent other content`,
      );
    }
    if (got.announced?.startsWith("sha256:") && got.announced !== digest) {
      throw new DigestMismatchError(
        `manifest of ${familiarName(ref)} from ${endpoint.host} has sha256 ${digest} ` +
          `but the registry announced ${got.announced.slice(0, 80)}`,
      );
    }
    const manifest = parseManifest(got.bytes, got.contentType);
    return { mediaType: manifest.mediaType, digest, bytes: got.bytes, manifest };
  }

  /**
   * The image manifest for `platform`: the tag's manifest, or its index's
   * entry for that platform. `cachedManifest` looks a manifest up by digest
   * where one was stored before (content-addressed, so it needs no second
   * check): an image already pulled then costs one manifest request.
   */
  async resolveImage(
    ref: ImageReference,
    platform: Platform = hostPlatform(),
    cachedManifest: (digest: string) => Promise<Buffer | undefined> = async () => undefined,
  ): Promise<ResolvedImage> {
    const top = await this.getManifest(ref, ref.digest ?? ref.tag ?? "latest");
    if (top.manifest.kind === "image") {
      return { manifestDigest: top.digest, manifest: top.manifest, mediaType: top.mediaType, bytes: top.bytes };
    }
    const entry = selectPlatform(top.manifest, platform, familiarName(ref));
    const cached = await cachedManifest(entry.digest);
    const child = cached
      ? { digest: entry.digest, bytes: cached, manifest: parseManifest(cached), mediaType: entry.mediaType }
      : await this.getManifest(ref, entry.digest);
    if (child.bytes.length !== entry.size) {
      throw new DigestMismatchError(
        `manifest ${entry.digest} is ${child.bytes.length} bytes but the index says ${entry.size}`,
      );
    }
    if (child.manifest.kind !== "image") {
      throw new ManifestError(`the index entry for ${familiarName(ref)} is another index, not an image manifest`);
    }
    return {
      indexDigest: top.digest,
      manifestDigest: child.digest,
      manifest: child.manifest,
      mediaType: child.mediaType,
      bytes: child.bytes,
      platform: entry.platform,
    };
  }

  /** A small blob (an image config) read into memory, size and sha256 verified. */
  async getBlob(ref: ImageReference, descriptor: Descriptor, maxBytes: number): Promise<Buffer> {
    checkDigest(descriptor.digest);
    if (descriptor.size > maxBytes) {
      throw new TooLargeError(`blob ${descriptor.digest} is ${descriptor.size} bytes, more than the ${maxBytes} allowed`);
    }
    const endpoint = this.endpoint(ref);
    const bytes = await this.send(ref, `blobs/${descriptor.digest}`, () => ({}), async (res) => {
      if (res.status !== 200) throw await statusError(res, endpoint, ref, `blob ${descriptor.digest}`);
      return readBody(res, descriptor.size, `blob ${descriptor.digest}`);
    });
    if (bytes.length !== descriptor.size) {
      throw new DigestMismatchError(
        `blob ${descriptor.digest} is truncated: got ${bytes.length} of ${descriptor.size} bytes`,
      );
    }
    const actual = sha256(bytes);
    if (actual !== descriptor.digest) throw mismatch(descriptor.digest, actual, endpoint.host);
    return bytes;
  }

  /**
   * Stream a blob: its bytes go to `sink` as they arrive, each byte once and
   * in order, and the next chunk is read only once `sink`'s promise resolves
   * (so a slow consumer slows the download instead of filling memory). A
   * connection lost mid-body is continued with a Range request for what is
   * still missing. At most `descriptor.size` bytes are ever passed on; at the
   * end the size and sha256 are checked, so whatever the sink made of the
   * bytes must be thrown away when this throws.
   */
  async fetchBlob(
    ref: ImageReference,
    descriptor: Descriptor,
    sink: (chunk: Buffer) => void | Promise<void>,
    onProgress?: (bytesDone: number, total: number) => void,
  ): Promise<void> {
    checkDigest(descriptor.digest);
    const { digest, size } = descriptor;
    const endpoint = this.endpoint(ref);
    const hash = createHash("sha256");
    /** Bytes passed to the sink so far: where a retry continues from. */
    let done = 0;
    /** Whether the bytes came from more than one response. */
    let resumed = false;
    await this.send(
      ref,
      `blobs/${digest}`,
      (): Record<string, string> => (done > 0 ? { Range: `bytes=${done}-` } : {}),
      async (res) => {
        /** Bytes of this body to drop: those the sink already has, when the registry ignored our Range. */
        let skip = 0;
        if (res.status === 206 && done > 0) {
          const range = parseContentRange(header(res, "content-range"));
          if (!range || range.start !== done || (range.total !== undefined && range.total !== size)) {
            res.body.destroy();
            throw new RegistryError(`${endpoint.host} answered a Range request for blob ${digest} with the wrong range`);
          }
          resumed = true;
        } else if (res.status === 200) {
          skip = done;
          if (done > 0) resumed = true;
        } else if (res.status === 416 && done > 0) {
          // "Range Not Satisfiable": the registry holds no byte past those we
          // already have, so its copy of the blob is shorter than the manifest says.
          res.body.resume();
          throw truncated(digest, done, size);
        } else {
          throw await statusError(res, endpoint, ref, `blob ${digest}`);
        }
        for await (let chunk of res.body as AsyncIterable<Buffer>) {
          if (skip > 0) {
            const dropped = Math.min(skip, chunk.length);
            skip -= dropped;
            chunk = chunk.subarray(dropped);
            if (chunk.length === 0) continue;
          }
          if (done + chunk.length > size) {
            res.body.destroy();
            throw new TooLargeError(`blob ${digest} is larger than the ${size} bytes its descriptor says`);
          }
          hash.update(chunk);
          done += chunk.length;
          onProgress?.(done, size);
          await sink(chunk);
        }
        if (done < size) {
          // The body ended early without a network error: resumable, so retry as if it had been reset.
          throw Object.assign(truncated(digest, done, size), { code: "ECONNRESET" });
        }
      },
    );
    const actual = `sha256:${hash.digest("hex")}`;
    if (actual === digest) return;
    // A blob continued with a Range request is only as good as the splice:
    // only a download made in one piece proves the registry's content wrong,
    // so the caller may want to try once more from the first byte.
    const error = mismatch(digest, actual, endpoint.host);
    throw resumed ? new ResumedBlobMismatchError(error.message) : error;
  }

  /** Whether GET /v2/REPO/tags/list says NAME_UNKNOWN; any other answer counts as "exists". */
  private async repositoryMissing(ref: ImageReference): Promise<boolean> {
    const endpoint = this.endpoint(ref);
    try {
      return await this.send(ref, "tags/list?n=1", () => ({}), async (res) => {
        const error = await statusError(res, endpoint, ref, "tag list");
        return res.status === 404 && error instanceof ImageNotFoundError;
      });
    } catch {
      return false;
    }
  }

  /**
   * Plain HTTP is allowed for listed registries and, as dockerd does by
   * default, for loopback ones (127.0.0.0/8, localhost): a registry on this
   * very machine is what a classroom runs offline.
   */
  private isInsecure(host: string): boolean {
    const h = host.toLowerCase();
    const name = h.replace(/:\d+$/, "");
    const loopback = name === "localhost" || /^127(\.\d{1,3}){3}$/.test(name);
    return this.insecure.has(h) || (loopback && this.options.loopbackIsInsecure !== false);
  }

  /** Registry, mirror or Docker Hub: where this reference's requests go. */
  private endpoint(ref: ImageReference): Endpoint {
    if (ref.registry === DOCKER_HUB) {
      if (this.mirror) return { base: new URL(this.mirror.origin), host: this.mirror.host, credentialsHost: this.mirror.host };
      return { base: new URL(`https://${DOCKER_HUB_HOST}`), host: DOCKER_HUB_HOST, credentialsHost: DOCKER_HUB };
    }
    const scheme = this.isInsecure(ref.registry) ? "http" : "https";
    return { base: new URL(`${scheme}://${ref.registry}`), host: ref.registry, credentialsHost: ref.registry };
  }

  /**
   * GET /v2/REPO/PATH with authentication: the Authorization the ping's
   * challenge calls for, and one more try with a fresh token if the registry
   * still answers 401 (an expired token, or a challenge only this path makes).
   */
  private async send<T>(
    ref: ImageReference,
    path: string,
    headers: () => Record<string, string> | Promise<Record<string, string>>,
    consume: (res: Response) => Promise<T>,
  ): Promise<T> {
    const endpoint = this.endpoint(ref);
    const url = new URL(`/v2/${ref.repository}/${path}`, endpoint.base);
    let authorization = await this.authorization(endpoint, ref, await this.ping(endpoint));
    for (let round = 0; ; round++) {
      const result: T | Unauthorized = await getWithRetry(url, `registry ${endpoint.host}`, this.transport, {
        headers: async () => ({ ...(await headers()), ...(authorization ? { Authorization: authorization } : {}) }),
        consume: async (res) => {
          if (res.status === 401 && res.url.origin === url.origin) {
            res.body.resume();
            return { unauthorized: header(res, "www-authenticate") ?? "" };
          }
          return consume(res);
        },
      });
      if (!isUnauthorized(result)) return result;
      if (round > 0 || !result.unauthorized) throw this.refused(endpoint, ref, authorization);
      const challenges = parseChallenge(result.unauthorized);
      const bearer = challenges.find((c) => c.scheme === "bearer");
      if (bearer) this.tokens.forget(bearer, scope(ref), this.credentialsFor(endpoint));
      authorization = await this.authorization(endpoint, ref, challenges);
      if (!authorization) throw this.refused(endpoint, ref, undefined);
    }
  }

  private refused(endpoint: Endpoint, ref: ImageReference, authorization: string | undefined): AuthenticationError {
    const credentials = this.credentialsFor(endpoint);
    if (authorization && credentials) {
      return new AuthenticationError(
        `authentication to ${endpoint.host} failed: the credentials of ${credentials.username} were refused for ${ref.repository}`,
      );
    }
    return new AuthenticationError(
      `authentication to ${endpoint.host} failed: pull access to ${ref.repository} denied ` +
        `(the repository may not exist, or needs docker login ${endpoint.credentialsHost})`,
    );
  }

  /** GET /v2/ without credentials: 200 means open, 401 carries the challenges. */
  private ping(endpoint: Endpoint): Promise<AuthChallenge[]> {
    const key = endpoint.base.origin;
    let pending = this.pings.get(key);
    if (!pending) {
      const url = new URL("/v2/", endpoint.base);
      pending = getWithRetry(url, `registry ${endpoint.host}`, this.transport, {
        headers: () => ({}),
        consume: async (res) => {
          res.body.resume();
          if (res.status === 200) return [];
          if (res.status === 401) {
            const value = header(res, "www-authenticate");
            if (!value) throw new AuthenticationError(`authentication to ${endpoint.host} failed: 401 without a challenge`);
            return parseChallenge(value);
          }
          throw new RegistryError(
            `${endpoint.host} does not look like a container registry: GET /v2/ answered ${res.status}`,
          );
        },
      });
      this.pings.set(key, pending);
      pending.catch(() => this.pings.delete(key));
    }
    return pending;
  }

  /** The Authorization header these challenges call for, or undefined for an open registry. */
  private async authorization(
    endpoint: Endpoint,
    ref: ImageReference,
    challenges: AuthChallenge[],
  ): Promise<string | undefined> {
    if (challenges.length === 0) return undefined;
    const credentials = this.credentialsFor(endpoint);
    const bearer = challenges.find((c) => c.scheme === "bearer");
    if (bearer) return `Bearer ${await this.tokens.get(bearer, scope(ref), credentials, endpoint.host)}`;
    if (challenges.some((c) => c.scheme === "basic")) {
      if (credentials) return basicAuthorization(credentials);
      throw new AuthenticationError(
        `authentication to ${endpoint.host} failed: it asks for a user name and password and config.json ` +
          `has none for ${endpoint.credentialsHost} (log in with docker login or skopeo login)`,
      );
    }
    const schemes = challenges.map((c) => c.scheme).join(", ");
    throw new AuthenticationError(`authentication to ${endpoint.host} failed: unsupported scheme ${schemes}`);
  }

  private credentialsFor(endpoint: Endpoint): Credentials | undefined {
    if (!this.credentials.has(endpoint.credentialsHost)) {
      this.credentials.set(endpoint.credentialsHost, loadCredentials(endpoint.credentialsHost, this.options.dockerConfigDir));
    }
    return this.credentials.get(endpoint.credentialsHost);
  }
}

function isUnauthorized(value: unknown): value is Unauthorized {
  return typeof value === "object" && value !== null && "unauthorized" in value && !Buffer.isBuffer(value);
}

function scope(ref: ImageReference): string {
  return `repository:${ref.repository}:pull`;
}

function checkDigest(digest: string): void {
  if (!DIGEST.test(digest)) throw new ManifestError(`invalid blob digest ${digest.slice(0, 100)}`);
}

function sha256(bytes: Uint8Array): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

function mismatch(expected: string, actual: string, host: string): DigestMismatchError {
  return new DigestMismatchError(`digest mismatch for blob ${expected} from ${host}: the content hashes to ${actual}`);
}

function truncated(digest: string, received: number, size: number): DigestMismatchError {
  return new DigestMismatchError(`blob ${digest} is truncated: the registry sent ${received} of ${size} bytes`);
}

function header(res: Response, name: string): string | undefined {
  const value = res.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** "bytes 100-199/200" → {start: 100, total: 200}; "bytes 100-199/*" → {start: 100}. */
export function parseContentRange(value: string | undefined): { start: number; total?: number } | undefined {
  const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(value?.trim() ?? "");
  if (!m) return undefined;
  return { start: Number(m[1]), ...(m[3] !== "*" && { total: Number(m[3]) }) };
}

/** A registry's refusal as one line: the spec's error code picks the class. */
async function statusError(res: Response, endpoint: Endpoint, ref: ImageReference, what: string): Promise<ImageError> {
  let code = "";
  let message = "";
  try {
    const body = await readBody(res, MAX_ERROR_BODY, "error response");
    const first = JSON.parse(body.toString("utf8"))?.errors?.[0];
    code = typeof first?.code === "string" ? first.code : "";
    message = typeof first?.message === "string" ? oneLine(first.message) : "";
  } catch {
    res.body.destroy(); // Not the spec's JSON error; the status alone will do.
  }
  const said = message ? `: ${message}` : "";
  const repo = `${ref.repository} on ${endpoint.host}`;
  if (res.status === 404 && code === "NAME_UNKNOWN") {
    return new ImageNotFoundError(`image not found: repository ${repo} does not exist`);
  }
  if (res.status === 404 && (code === "MANIFEST_UNKNOWN" || what.startsWith("tag") || what.startsWith("manifest"))) {
    return new TagNotFoundError(`${what} not found in ${repo}`);
  }
  if (res.status === 404 && code === "BLOB_UNKNOWN") return new RegistryError(`${what} is missing from ${repo}`);
  if (res.status === 403) return new AuthenticationError(`authentication to ${endpoint.host} failed: access to ${ref.repository} forbidden${said}`);
  if (res.status === 429) {
    const after = header(res, "retry-after");
    return new RegistryError(`${endpoint.host} is rate limiting pulls (429)${said}${after ? `; retry after ${after}` : ""}`);
  }
  return new RegistryError(`${endpoint.host} answered ${res.status} for ${what} of ${ref.repository}${code ? ` (${code})` : ""}${said}`);
}

function oneLine(text: string): string {
  const flat = text.replace(/[\x00-\x1f\x7f]+/g, " ").trim();
  return flat.length > 200 ? `${flat.slice(0, 200)}…` : flat;
}
