// Tokens and cookies: what lets an instructor or admin in, and what ties a
// browser to its session.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { newSecret, secretFromCookieHeader, sessionCookie } from "../../server/web/cookies.ts";
import { Resize } from "../../server/common/protocol.ts";
import { bearerToken, loadTokens, roleOf, tokenMatches } from "../../server/web/tokens.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "pg-tokens-"));
  dirs.push(d);
  return d;
}

describe("tokens", () => {
  it("are generated at first start, kept readable by the owner only, and the same at the next start", () => {
    const dir = tempDir();
    const first = loadTokens(dir, {});
    expect(first.instructor).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(first.admin).not.toBe(first.instructor);
    expect(fs.statSync(first.file).mode & 0o777).toBe(0o600);
    const second = loadTokens(dir, {});
    expect(second).toMatchObject({ instructor: first.instructor, admin: first.admin });
  });

  it("come from the environment when set", () => {
    const tokens = loadTokens(tempDir(), { instructor: "teach-me-please", admin: "admin-admin-admin" });
    expect(tokens).toMatchObject({ instructor: "teach-me-please", admin: "admin-admin-admin", fromFile: { instructor: false, admin: false } });
    expect(roleOf("teach-me-please", tokens)).toBe("instructor");
    expect(roleOf("admin-admin-admin", tokens)).toBe("admin");
    expect(roleOf("teach-me-pleasE", tokens)).toBeUndefined();
    expect(roleOf(undefined, tokens)).toBeUndefined();
    expect(roleOf({ token: "teach-me-please" }, tokens)).toBeUndefined();
  });

  it("match only exactly", () => {
    expect(tokenMatches("abc", "abc")).toBe(true);
    expect(tokenMatches("abcd", "abc")).toBe(false);
    expect(tokenMatches("", "")).toBe(false);
    expect(bearerToken("Bearer xyz")).toBe("xyz");
    expect(bearerToken("Basic xyz")).toBeUndefined();
    expect(bearerToken(undefined)).toBeUndefined();
  });
});

describe("the session cookie", () => {
  it("is httpOnly and SameSite=Lax, and only a well-formed secret is read back", () => {
    const secret = newSecret();
    expect(sessionCookie(secret, 60)).toBe(`pg_session=${secret}; Path=/; HttpOnly; SameSite=Lax; Max-Age=60`);
    expect(secretFromCookieHeader(`theme=dark; pg_session=${secret}`)).toBe(secret);
    expect(secretFromCookieHeader("pg_session=short")).toBeUndefined();
    expect(secretFromCookieHeader(`pg_session=${secret.slice(0, 42)}!`)).toBeUndefined();
    expect(secretFromCookieHeader(undefined)).toBeUndefined();
  });
});

describe("resize values from the browser", () => {
  it("are clamped to what a terminal can be, and refused when not whole numbers", () => {
    expect(Resize.parse({ cols: 100000, rows: -4 })).toEqual({ cols: 500, rows: 2 });
    expect(Resize.parse({ cols: 120, rows: 40 })).toEqual({ cols: 120, rows: 40 });
    expect(Resize.safeParse({ cols: 80.5, rows: 24 }).success).toBe(false);
    expect(Resize.safeParse({ cols: "80", rows: 24 }).success).toBe(false);
  });
});
