// How the registry client speaks HTTP, checked against small loopback servers
// that behave the way real registries, token servers and blob storage do:
// tokens, redirects to another host, Range resumes, Retry-After, cut-off and
// endless bodies. (The real docker-registry is exercised by the integration tests.)
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import {
  AuthenticationError,
  DigestMismatchError,
  ImageNotFoundError,
  RegistryError,
  RegistryUnreachableError,
  TagNotFoundError,
  TooLargeError,
} from "../../server/engine/image/errors.ts";
import { MediaType } from "../../server/engine/image/manifest.ts";
import { parseReference } from "../../server/engine/image/reference.ts";
import { RegistryClient, ResumedBlobMismatchError, type RegistryClientOptions } from "../../server/engine/image/registry.ts";
import { retryAfterMs } from "../../server/engine/image/transport.ts";
import type { Descriptor, ImageReference } from "../../server/engine/image/types.ts";

interface Seen {
  path: string;
  headers: http.IncomingHttpHeaders;
  at: number;
}
interface Server {
  host: string;
  origin: string;
  seen: Seen[];
}

const servers: http.Server[] = [];
const tmp = mkdtempSync(path.join(os.tmpdir(), "pg-registry-client-"));
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((resolve) => s.close(resolve));
  }
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function serve(handler: (req: http.IncomingMessage, res: http.ServerResponse, seen: Seen[]) => void): Promise<Server> {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    seen.push({ path: req.url ?? "", headers: req.headers, at: Date.now() });
    handler(req, res, seen);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { host, origin: `http://${host}`, seen };
}

function client(hosts: string[], extra: Partial<RegistryClientOptions> = {}): RegistryClient {
  return new RegistryClient({
    insecureRegistries: hosts,
    dockerConfigDir: path.join(tmp, "no-config"),
    transport: { retries: 2, baseDelayMs: 10, maxDelayMs: 50, idleTimeoutMs: 2000 },
    ...extra,
  });
}

function blob(content: Buffer | string): { bytes: Buffer; descriptor: Descriptor } {
  const bytes = Buffer.from(content);
  const digest = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
  return { bytes, descriptor: { mediaType: MediaType.ociLayerGzip, digest, size: bytes.length } };
}

function manifestFor(layer: Descriptor): Buffer {
  const config = blob("{}").descriptor;
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.dockerManifest,
      config: { ...config, mediaType: MediaType.dockerConfig },
      layers: [layer],
    }),
  );
}

const digestOf = (bytes: Buffer) => `sha256:${createHash("sha256").update(bytes).digest("hex")}`;

/** Everything fetchBlob passes to its sink, in order. */
async function streamed(c: RegistryClient, ref: ImageReference, descriptor: Descriptor, onProgress?: (done: number, total: number) => void): Promise<Buffer> {
  const chunks: Buffer[] = [];
  await c.fetchBlob(ref, descriptor, (chunk) => void chunks.push(chunk), onProgress);
  return Buffer.concat(chunks);
}

async function failure(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    expect((error as Error).message).not.toContain("\n");
    return error as Error;
  }
  throw new Error("expected a failure");
}

describe("authentication", () => {
  it("gets a Bearer token with config.json credentials and drops it when a blob redirects to storage", async () => {
    const layer = blob("layer bytes ".repeat(1000));
    const manifest = manifestFor(layer.descriptor);
    const storage = await serve((_req, res) => res.end(layer.bytes));
    const tokens = await serve((req, res) => {
      const ok = req.headers.authorization === `Basic ${Buffer.from("student:s3cret").toString("base64")}`;
      res.writeHead(ok ? 200 : 401, { "Content-Type": "application/json" });
      res.end(ok ? JSON.stringify({ access_token: "tok-app", expires_in: 300 }) : "{}");
    });
    const registry = await serve((req, res) => {
      const challenge = `Bearer realm="${tokens.origin}/token",service="test registry"`;
      if (req.headers.authorization !== "Bearer tok-app") {
        res.writeHead(401, { "WWW-Authenticate": challenge }).end();
      } else if (req.url === "/v2/team/app/manifests/1.0") {
        res.writeHead(200, { "Content-Type": MediaType.dockerManifest }).end(manifest);
      } else if (req.url === `/v2/team/app/blobs/${layer.descriptor.digest}`) {
        res.writeHead(307, { Location: `${storage.origin}/bucket/object?signature=xyz` }).end();
      } else res.writeHead(404).end();
    });
    const configDir = path.join(tmp, "docker-config");
    rmSync(configDir, { recursive: true, force: true });
    mkdirSync(configDir, { recursive: true });
    writeFileSync(
      path.join(configDir, "config.json"),
      JSON.stringify({ auths: { [registry.host]: { auth: Buffer.from("student:s3cret").toString("base64") } } }),
    );

    const c = client([registry.host, tokens.host, storage.host], { dockerConfigDir: configDir });
    const ref = parseReference(`${registry.host}/team/app:1.0`);
    const resolved = await c.resolveImage(ref);
    expect(resolved.manifestDigest).toBe(digestOf(manifest));
    expect((await streamed(c, ref, resolved.manifest.layers[0])).equals(layer.bytes)).toBe(true);

    const tokenUrl = new URL(tokens.seen[0].path, tokens.origin);
    expect(tokenUrl.searchParams.get("scope")).toBe("repository:team/app:pull");
    expect(tokenUrl.searchParams.get("service")).toBe("test registry");
    // One token for both requests: it is cached per scope.
    expect(tokens.seen).toHaveLength(1);
    const blobRequest = registry.seen.find((s) => s.path.includes("/blobs/"));
    expect(blobRequest?.headers.authorization).toBe("Bearer tok-app");
    expect(storage.seen).toHaveLength(1);
    expect(storage.seen[0].path).toBe("/bucket/object?signature=xyz");
    expect(storage.seen[0].headers.authorization).toBeUndefined();
  });

  it("reports a token server that refuses anonymous access", async () => {
    const tokens = await serve((_req, res) => res.writeHead(401).end());
    const registry = await serve((_req, res) =>
      res.writeHead(401, { "WWW-Authenticate": `Bearer realm="${tokens.origin}/token"` }).end(),
    );
    const error = await failure(client([registry.host, tokens.host]).getManifest(parseReference(`${registry.host}/x`), "latest"));
    expect(error).toBeInstanceOf(AuthenticationError);
    expect(error.message).toMatch(new RegExp(`^authentication to ${registry.host} failed: token server ${tokens.host} refused anonymously`));
  });

  it("sends Basic credentials where asked and reports them refused", async () => {
    const registry = await serve((_req, res) => res.writeHead(401, { "WWW-Authenticate": 'Basic realm="r"' }).end());
    const configDir = mkdtempSync(path.join(tmp, "cfg-"));
    writeFileSync(path.join(configDir, "config.json"), JSON.stringify({ auths: { [registry.host]: { username: "student", password: "wrong" } } }));
    const c = client([registry.host], { dockerConfigDir: configDir });
    const error = await failure(c.getManifest(parseReference(`${registry.host}/x`), "latest"));
    expect(error).toBeInstanceOf(AuthenticationError);
    expect(error.message).toBe(`authentication to ${registry.host} failed: the credentials of student were refused for x`);
    expect(registry.seen.at(-1)?.headers.authorization).toBe(`Basic ${Buffer.from("student:wrong").toString("base64")}`);
  });
});

describe("blob downloads", () => {
  const layer = blob(Buffer.from(Array.from({ length: 100_000 }, (_, i) => (i * 7) % 251)));
  const ref = (registry: Server) => parseReference(`${registry.host}/x`);

  /** A registry whose first blob response sends `firstBytes` of `first`, pauses so the client has them, then resets; later ones answer `later`. */
  async function droppingRegistry(first: Buffer, firstBytes: number, later: (req: http.IncomingMessage, res: http.ServerResponse) => void) {
    return serve((req, res, seen) => {
      if (req.url === "/v2/") return res.end("{}");
      if (seen.filter((s) => s.path !== "/v2/").length === 1) {
        res.writeHead(200, { "Content-Length": first.length });
        res.write(first.subarray(0, firstBytes), () => setTimeout(() => res.destroy(), 200));
        return;
      }
      later(req, res);
    });
  }

  /** Answers a Range request with 206 and the rest of `bytes`, a plain request with all of them. */
  function ranged(bytes: Buffer) {
    return (req: http.IncomingMessage, res: http.ServerResponse) => {
      const start = Number(/bytes=(\d+)-/.exec(req.headers.range ?? "")?.[1] ?? 0);
      if (start > 0) res.writeHead(206, { "Content-Range": `bytes ${start}-${bytes.length - 1}/${bytes.length}` });
      res.end(bytes.subarray(start));
    };
  }

  it("passes every byte to the sink once, in order, with progress", async () => {
    const registry = await serve((req, res) => res.end(req.url === "/v2/" ? "{}" : layer.bytes));
    const progress: number[] = [];
    const got = await streamed(client([registry.host]), ref(registry), layer.descriptor, (done, total) => {
      expect(total).toBe(100_000);
      progress.push(done);
    });
    expect(got.equals(layer.bytes)).toBe(true);
    expect(progress.at(-1)).toBe(100_000);
  });

  it("continues with Range after the connection drops mid-body, without passing a byte twice", async () => {
    const registry = await droppingRegistry(layer.bytes, 30_000, ranged(layer.bytes));
    const got = await streamed(client([registry.host]), ref(registry), layer.descriptor);
    const blobRequests = registry.seen.filter((s) => s.path !== "/v2/");
    expect(blobRequests).toHaveLength(2);
    expect(blobRequests[1].headers.range).toMatch(/^bytes=[1-9]\d*-$/);
    expect(got.equals(layer.bytes)).toBe(true);
  });

  it("skips what the sink already has when the registry ignores Range and sends the whole blob", async () => {
    const registry = await droppingRegistry(layer.bytes, 30_000, (_req, res) => res.end(layer.bytes));
    const got = await streamed(client([registry.host]), ref(registry), layer.descriptor);
    expect(registry.seen.at(-1)?.headers.range).toMatch(/^bytes=[1-9]\d*-$/);
    expect(got.equals(layer.bytes)).toBe(true);
  });

  it("waits for the sink before reading on", async () => {
    const big = blob(Buffer.alloc(2 * 1024 * 1024, 7));
    const registry = await serve((req, res) => res.end(req.url === "/v2/" ? "{}" : big.bytes));
    let inSink = 0;
    let calls = 0;
    let overlapped = false;
    await client([registry.host]).fetchBlob(ref(registry), big.descriptor, async () => {
      overlapped ||= inSink > 0;
      inSink++;
      calls++;
      await new Promise((resolve) => setTimeout(resolve, 2));
      inSink--;
    });
    expect(calls).toBeGreaterThan(1);
    expect(overlapped).toBe(false);
  });

  it("refuses a body longer than the descriptor without passing on more than its size", async () => {
    const registry = await serve((req, res) => {
      if (req.url === "/v2/") return res.end("{}");
      res.write(layer.bytes);
      res.end(Buffer.alloc(50_000, 1));
    });
    const chunks: Buffer[] = [];
    const error = await failure(client([registry.host]).fetchBlob(ref(registry), layer.descriptor, (chunk) => void chunks.push(chunk)));
    expect(error).toBeInstanceOf(TooLargeError);
    expect(error.message).toBe(`blob ${layer.descriptor.digest} is larger than the 100000 bytes its descriptor says`);
    expect(Buffer.concat(chunks).length).toBeLessThanOrEqual(100_000);
  });

  it("fails when the content does not hash to its digest", async () => {
    const tampered = Buffer.from(layer.bytes);
    tampered[1234] ^= 0xff;
    const registry = await serve((req, res) => res.end(req.url === "/v2/" ? "{}" : tampered));
    const error = await failure(streamed(client([registry.host]), ref(registry), layer.descriptor));
    expect(error).toBeInstanceOf(DigestMismatchError);
    expect(error).not.toBeInstanceOf(ResumedBlobMismatchError);
    expect(error.message).toMatch(/^digest mismatch for blob sha256:[0-9a-f]{64} from 127\.0\.0\.1:\d+: the content hashes to sha256:/);
  });

  it("reports a blob the registry keeps cutting short", async () => {
    const registry = await serve((req, res) => res.end(req.url === "/v2/" ? "{}" : layer.bytes.subarray(0, 10)));
    const error = await failure(client([registry.host]).getBlob(ref(registry), layer.descriptor, 1 << 20));
    expect(error).toBeInstanceOf(DigestMismatchError);
    expect(error.message).toMatch(/is truncated: got 10 of 100000 bytes/);
  });

  it("reports a blob the registry holds only part of, not the 416 its resume gets", async () => {
    // As a registry whose blob file was cut short serves it: the bytes it has,
    // then 416 Range Not Satisfiable for the rest.
    const have = layer.bytes.subarray(0, 40_000);
    const registry = await serve((req, res) => {
      if (req.url === "/v2/") return res.end("{}");
      const start = Number(/bytes=(\d+)-/.exec(req.headers.range ?? "")?.[1] ?? 0);
      if (start >= have.length) return res.writeHead(416, { "Content-Range": `bytes */${have.length}` }).end();
      res.writeHead(start > 0 ? 206 : 200, {
        "Content-Length": have.length - start,
        ...(start > 0 && { "Content-Range": `bytes ${start}-${have.length - 1}/${have.length}` }),
      });
      res.end(have.subarray(start));
    });
    const error = await failure(streamed(client([registry.host]), ref(registry), layer.descriptor));
    expect(error).toBeInstanceOf(DigestMismatchError);
    expect(error.message).toBe(`blob ${layer.descriptor.digest} is truncated: the registry sent 40000 of 100000 bytes`);
    expect(registry.seen.filter((s) => s.path !== "/v2/").map((s) => s.headers.range)).toEqual([undefined, "bytes=40000-"]);
  });

  it("says when bytes that do not hash right came from a resumed download, so that the caller can start over", async () => {
    // The first response sent other bytes than the second continues: the splice is wrong, not necessarily the registry.
    const registry = await droppingRegistry(Buffer.alloc(layer.bytes.length, 0xee), 40_000, ranged(layer.bytes));
    const error = await failure(streamed(client([registry.host]), ref(registry), layer.descriptor));
    expect(error).toBeInstanceOf(ResumedBlobMismatchError);
    expect(error.message).toMatch(/^digest mismatch for blob sha256:[0-9a-f]{64} from 127\.0\.0\.1:\d+: the content hashes to sha256:/);
    expect(registry.seen.filter((s) => s.path !== "/v2/").map((s) => s.headers.range)).toEqual([undefined, "bytes=40000-"]);
  });

  it("times out a download that stalls", async () => {
    const registry = await serve((req, res) => {
      if (req.url === "/v2/") return res.end("{}");
      res.writeHead(200, { "Content-Length": layer.bytes.length });
      res.write(layer.bytes.subarray(0, 100)); // …and nothing more.
    });
    const c = client([registry.host], { transport: { retries: 0, idleTimeoutMs: 300 } });
    const error = await failure(streamed(c, ref(registry), layer.descriptor));
    expect(error).toBeInstanceOf(RegistryUnreachableError);
    expect(error.message).toMatch(new RegExp(`^cannot reach registry ${registry.host}: timed out`));
  });
});

describe("redirects", () => {
  it("keeps Authorization on a same-origin redirect", async () => {
    const config = blob('{"architecture":"amd64"}');
    const registry = await serve((req, res) => {
      if (req.headers.authorization !== `Basic ${Buffer.from("u:p").toString("base64")}`) {
        return res.writeHead(401, { "WWW-Authenticate": 'Basic realm="r"' }).end();
      }
      if (req.url === "/v2/") return res.end("{}");
      if (req.url?.startsWith("/v2/x/blobs/")) return res.writeHead(302, { Location: "/moved" }).end();
      res.end(config.bytes);
    });
    const configDir = mkdtempSync(path.join(tmp, "cfg-"));
    writeFileSync(path.join(configDir, "config.json"), JSON.stringify({ auths: { [registry.host]: { username: "u", password: "p" } } }));
    const got = await client([registry.host], { dockerConfigDir: configDir }).getBlob(
      parseReference(`${registry.host}/x`),
      config.descriptor,
      1024,
    );
    expect(got).toEqual(config.bytes);
    expect(registry.seen.at(-1)?.path).toBe("/moved");
  });

  it("gives up after five redirects", async () => {
    const registry = await serve((req, res) => {
      if (req.url === "/v2/") return res.end("{}");
      res.writeHead(302, { Location: `/hop${registry.seen.length}` }).end();
    });
    const error = await failure(client([registry.host]).getManifest(parseReference(`${registry.host}/x`), "latest"));
    expect(error).toBeInstanceOf(RegistryError);
    expect(error.message).toBe(`registry ${registry.host} redirected more than 5 times`);
  });

  it("refuses a redirect to plain http on a host not listed as insecure", async () => {
    const other = await serve((_req, res) => res.end("secret"));
    const registry = await serve((req, res) => {
      if (req.url === "/v2/") return res.end("{}");
      res.writeHead(302, { Location: `http://localhost:${other.host.split(":")[1]}/blob` }).end();
    });
    const strict = client([registry.host], { loopbackIsInsecure: false });
    const error = await failure(strict.getManifest(parseReference(`${registry.host}/x`), "latest"));
    expect(error.message).toMatch(/^refusing http to localhost:\d+: only https is allowed/);
    expect(other.seen).toHaveLength(0);
  });
});

describe("retries", () => {
  it("waits as long as Retry-After says before asking again", async () => {
    const manifest = manifestFor(blob("x").descriptor);
    const registry = await serve((req, res, seen) => {
      if (req.url === "/v2/") return res.end("{}");
      if (seen.filter((s) => s.path !== "/v2/").length === 1) return res.writeHead(503, { "Retry-After": "1" }).end();
      res.writeHead(200, { "Content-Type": MediaType.dockerManifest }).end(manifest);
    });
    const got = await client([registry.host]).getManifest(parseReference(`${registry.host}/x`), "latest");
    expect(got.digest).toBe(digestOf(manifest));
    const [first, second] = registry.seen.filter((s) => s.path !== "/v2/");
    expect(second.at - first.at).toBeGreaterThanOrEqual(950);
  });

  it("does not wait an hour for a rate limit: it says so", async () => {
    const registry = await serve((req, res) => {
      if (req.url === "/v2/") return res.end("{}");
      res.writeHead(429, { "Retry-After": "3600", "Content-Type": "application/json" });
      res.end(JSON.stringify({ errors: [{ code: "TOOMANYREQUESTS", message: "You have reached your pull rate limit." }] }));
    });
    const error = await failure(client([registry.host]).getManifest(parseReference(`${registry.host}/x`), "latest"));
    expect(error).toBeInstanceOf(RegistryError);
    expect(error.message).toBe(`${registry.host} is rate limiting pulls (429): You have reached your pull rate limit.; retry after 3600`);
    expect(registry.seen.filter((s) => s.path !== "/v2/")).toHaveLength(1);
  });

  it("gives up on a server error after the configured retries", async () => {
    const registry = await serve((req, res) => (req.url === "/v2/" ? res.end("{}") : res.writeHead(502).end()));
    const error = await failure(client([registry.host]).getManifest(parseReference(`${registry.host}/x`), "latest"));
    expect(error.message).toBe(`${registry.host} answered 502 for tag "latest" of x`);
    expect(registry.seen.filter((s) => s.path !== "/v2/")).toHaveLength(3);
  });

  it("reads Retry-After as seconds or as an HTTP date", () => {
    const now = Date.parse("Wed, 21 Oct 2026 07:28:00 GMT");
    expect(retryAfterMs("120", now)).toBe(120_000);
    expect(retryAfterMs("Wed, 21 Oct 2026 07:28:30 GMT", now)).toBe(30_000);
    expect(retryAfterMs("Wed, 21 Oct 2026 07:00:00 GMT", now)).toBe(0);
    expect(retryAfterMs("soon", now)).toBeUndefined();
  });
});

describe("manifests", () => {
  it("cuts off an endless manifest instead of buffering it", async () => {
    let closed = false;
    const registry = await serve((req, res) => {
      if (req.url === "/v2/") return res.end("{}");
      res.writeHead(200, { "Content-Type": MediaType.ociManifest });
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      const pump = () => {
        while (!res.destroyed && res.write(chunk));
        if (!res.destroyed) res.once("drain", pump);
      };
      res.on("close", () => (closed = true));
      pump();
    });
    const error = await failure(client([registry.host]).getManifest(parseReference(`${registry.host}/x`), "latest"));
    expect(error).toBeInstanceOf(TooLargeError);
    expect(error.message).toMatch(/manifest of 127\.0\.0\.1:\d+\/x:latest is larger than the 4194304 bytes allowed/);
    // The client hangs up rather than reading the rest.
    await expect.poll(() => closed, { timeout: 10_000 }).toBe(true);
  });

  it("checks the content against the digest asked for and the one announced", async () => {
    const manifest = manifestFor(blob("x").descriptor);
    const other = `sha256:${"0".repeat(64)}`;
    const registry = await serve((req, res) => {
      if (req.url === "/v2/") return res.end("{}");
      const headers: Record<string, string> = { "Content-Type": MediaType.dockerManifest };
      if (req.url?.endsWith("/announced")) headers["Docker-Content-Digest"] = other;
      res.writeHead(200, headers).end(manifest);
    });
    const c = client([registry.host]);
    const ref = parseReference(`${registry.host}/x`);
    const byDigest = await failure(c.getManifest(ref, other));
    expect(byDigest).toBeInstanceOf(DigestMismatchError);
    expect(byDigest.message).toBe(`manifest ${other} from ${registry.host} has sha256 ${digestOf(manifest)}: the registry sent other content`);
    const announced = await failure(c.getManifest(ref, "announced"));
    expect(announced).toBeInstanceOf(DigestMismatchError);
    expect((await c.getManifest(ref, digestOf(manifest))).manifest.kind).toBe("image");
  });

  it("tells an unknown image from an unknown tag", async () => {
    const registry = await serve((req, res) => {
      if (req.url === "/v2/") return res.end("{}");
      const known = req.url?.startsWith("/v2/library/alpine/");
      if (req.url?.includes("/tags/list")) {
        if (known) return res.end(JSON.stringify({ name: "library/alpine", tags: ["3.20"] }));
        return res.writeHead(404).end(JSON.stringify({ errors: [{ code: "NAME_UNKNOWN", message: "repository name not known to registry" }] }));
      }
      res.writeHead(404).end(JSON.stringify({ errors: [{ code: "MANIFEST_UNKNOWN", message: "manifest unknown" }] }));
    });
    const c = client([registry.host]);
    const tag = await failure(c.getManifest(parseReference(`${registry.host}/library/alpine:3.99`), "3.99"));
    expect(tag).toBeInstanceOf(TagNotFoundError);
    expect(tag.message).toBe(`tag "3.99" not found in library/alpine on ${registry.host}`);
    const image = await failure(c.getManifest(parseReference(`${registry.host}/library/nope`), "latest"));
    expect(image).toBeInstanceOf(ImageNotFoundError);
    expect(image.message).toBe(`image not found: repository library/nope does not exist on ${registry.host}`);
  });
});

describe("where requests go", () => {
  it("fetches docker.io images from the mirror, library/ prefix included", async () => {
    const manifest = manifestFor(blob("x").descriptor);
    const mirror = await serve((req, res) =>
      req.url === "/v2/" ? res.end("{}") : res.writeHead(200, { "Content-Type": MediaType.dockerManifest }).end(manifest),
    );
    const c = client([], { mirror: mirror.origin });
    await c.resolveImage(parseReference("alpine:3.20"));
    expect(mirror.seen.map((s) => s.path)).toEqual(["/v2/", "/v2/library/alpine/manifests/3.20"]);
    expect(mirror.seen[1].headers.accept).toContain(MediaType.ociIndex);
    expect(mirror.seen[1].headers.accept).toContain(MediaType.dockerManifest);
  });

  it("speaks https to a registry not listed as insecure, and says how to allow http", async () => {
    const registry = await serve((_req, res) => res.end("{}"));
    const strict = client([], { loopbackIsInsecure: false });
    const error = await failure(strict.getManifest(parseReference(`${registry.host}/x`), "latest"));
    expect(error).toBeInstanceOf(RegistryUnreachableError);
    expect(error.message).toMatch(/TLS handshake failed .*PLAYGROUND_INSECURE_REGISTRIES/);
    expect(registry.seen).toHaveLength(0);
  });

  it("speaks plain http to a loopback registry without being told, as dockerd does", async () => {
    const manifest = manifestFor(blob("x").descriptor);
    const registry = await serve((req, res) => {
      if (req.url === "/v2/") return res.end("{}");
      res.writeHead(200, { "Content-Type": MediaType.dockerManifest }).end(manifest);
    });
    const got = await client([]).getManifest(parseReference(`${registry.host}/x`), "latest");
    expect(got.digest).toBe(digestOf(manifest));
  });

  it("says at once that the registry cannot be reached when nothing listens on its loopback port", async () => {
    const gone = await serve(() => {});
    const port = gone.host.split(":")[1];
    servers.pop()!.close();
    // A backoff of a minute a retry: waiting it out would overrun the test's timeout.
    const patient = client([gone.host], { transport: { retries: 4, baseDelayMs: 60_000, maxDelayMs: 60_000 } });
    const error = await failure(patient.getManifest(parseReference(`${gone.host}/x`), "latest"));
    expect(error).toBeInstanceOf(RegistryUnreachableError);
    expect(error.message).toMatch(new RegExp(`^cannot reach registry 127\\.0\\.0\\.1:${port}: connection refused`));
  });

  it("still retries a connection reset before the answer", async () => {
    const manifest = manifestFor(blob("x").descriptor);
    const registry = await serve((req, res, seen) => {
      if (req.url === "/v2/") return res.end("{}");
      if (seen.filter((s) => s.path !== "/v2/").length === 1) return req.socket.destroy();
      res.writeHead(200, { "Content-Type": MediaType.dockerManifest }).end(manifest);
    });
    const got = await client([registry.host]).getManifest(parseReference(`${registry.host}/x`), "latest");
    expect(got.digest).toBe(digestOf(manifest));
    expect(registry.seen.filter((s) => s.path !== "/v2/")).toHaveLength(2);
  });
});
