// Credentials come from the config.json that `docker login` and `skopeo login`
// write. Hub entries have had several spellings over the years; each must be
// found, and credentials for one host must never be used for another.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { dockerConfigDir, loadCredentials, parseTokenResponse } from "../../server/engine/image/auth.ts";
import { AuthenticationError, ImageError } from "../../server/engine/image/errors.ts";

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function configDir(config: unknown): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), "pg-docker-config-"));
  dirs.push(dir);
  writeFileSync(path.join(dir, "config.json"), typeof config === "string" ? config : JSON.stringify(config));
  return dir;
}
const b64 = (s: string) => Buffer.from(s).toString("base64");

describe("loadCredentials", () => {
  it("reads docker login's base64 user:password, and a password holding colons", () => {
    const dir = configDir({ auths: { "127.0.0.1:5000": { auth: b64("student:pa:ss:word") } } });
    expect(loadCredentials("127.0.0.1:5000", dir)).toEqual({ username: "student", password: "pa:ss:word" });
  });

  it("reads separate username and password fields", () => {
    const dir = configDir({ auths: { "registry.example.com": { username: "u", password: "p" } } });
    expect(loadCredentials("registry.example.com", dir)).toEqual({ username: "u", password: "p" });
  });

  it.each(["https://index.docker.io/v1/", "index.docker.io", "docker.io", "registry-1.docker.io"])(
    "finds Docker Hub credentials stored under %s",
    (key) => {
      const dir = configDir({ auths: { [key]: { auth: b64("hubuser:hubpass") } } });
      expect(loadCredentials("docker.io", dir)).toEqual({ username: "hubuser", password: "hubpass" });
    },
  );

  it("matches keys written with a scheme or path, and only for that host", () => {
    const dir = configDir({ auths: { "http://127.0.0.1:5000/v2/": { auth: b64("a:b") }, "evil.example": { auth: b64("x:y") } } });
    expect(loadCredentials("127.0.0.1:5000", dir)).toEqual({ username: "a", password: "b" });
    expect(loadCredentials("127.0.0.1:5001", dir)).toBeUndefined();
    expect(loadCredentials("docker.io", dir)).toBeUndefined();
  });

  it("no file, no auths, or an empty entry (credsStore users) mean anonymous", () => {
    const empty = mkdtempSync(path.join(os.tmpdir(), "pg-docker-config-"));
    dirs.push(empty);
    expect(loadCredentials("docker.io", empty)).toBeUndefined();
    expect(loadCredentials("docker.io", configDir({ credsStore: "desktop" }))).toBeUndefined();
    expect(loadCredentials("docker.io", configDir({ auths: { "https://index.docker.io/v1/": {} } }))).toBeUndefined();
  });

  it("a broken file is a clear error, not anonymous access", () => {
    expect(() => loadCredentials("docker.io", configDir("{not json"))).toThrow(/config\.json: not valid JSON/);
    const bad = configDir({ auths: { "h:1": { auth: b64("no-colon") } } });
    expect(() => loadCredentials("h:1", bad)).toThrow(ImageError);
  });

  it("looks in $DOCKER_CONFIG first, then ~/.docker", () => {
    expect(dockerConfigDir({ DOCKER_CONFIG: "/etc/pg-docker" })).toBe("/etc/pg-docker");
    expect(dockerConfigDir({})).toBe(path.join(os.homedir(), ".docker"));
  });
});

describe("parseTokenResponse", () => {
  it("accepts token or access_token, with expires_in", () => {
    expect(parseTokenResponse(Buffer.from('{"token":"abc","expires_in":300}'), "h")).toEqual({ token: "abc", expiresIn: 300 });
    expect(parseTokenResponse(Buffer.from('{"access_token":"xyz"}'), "h")).toEqual({ token: "xyz" });
  });

  it("refuses a missing token or one that could break the Authorization header", () => {
    expect(() => parseTokenResponse(Buffer.from("{}"), "h")).toThrow(AuthenticationError);
    expect(() => parseTokenResponse(Buffer.from('{"token":"a\\r\\nX-Evil: 1"}'), "h")).toThrow(/invalid characters/);
    expect(() => parseTokenResponse(Buffer.from("<html>"), "h")).toThrow(/not JSON/);
  });
});
