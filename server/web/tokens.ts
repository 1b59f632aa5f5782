// The instructor's and the admin's tokens. Set them with
// PLAYGROUND_INSTRUCTOR_TOKEN / PLAYGROUND_ADMIN_TOKEN; when unset, a random
// one is made at first start and kept in the data directory (readable by root
// only), so it survives restarts and can be read back from the log or the file.
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import fs from "node:fs";
import path from "node:path";

export interface Tokens {
  instructor: string;
  admin: string;
  /** Which tokens came from the file (generated now or at an earlier start), not from the environment. */
  fromFile: { instructor: boolean; admin: boolean };
  file: string;
}

export function tokensFile(dataDir: string): string {
  return path.join(dataDir, "tokens.json");
}

export function loadTokens(dataDir: string, fromEnv: { instructor?: string; admin?: string }): Tokens {
  const file = tokensFile(dataDir);
  let stored: { instructor?: unknown; admin?: unknown } = {};
  try {
    stored = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw new Error(`cannot read ${file}: ${String(error)}`);
  }
  const valid = (t: unknown): t is string => typeof t === "string" && t.length >= 16;
  const keep = {
    instructor: valid(stored.instructor) ? stored.instructor : newToken(),
    admin: valid(stored.admin) ? stored.admin : newToken(),
  };
  if (keep.instructor !== stored.instructor || keep.admin !== stored.admin) {
    fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    // Written to a temporary file first: a crash never leaves a half-written token file.
    const temp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(temp, JSON.stringify(keep, null, 2) + "\n", { mode: 0o600 });
    fs.renameSync(temp, file);
  }
  fs.chmodSync(file, 0o600);
  return {
    instructor: fromEnv.instructor ?? keep.instructor,
    admin: fromEnv.admin ?? keep.admin,
    fromFile: { instructor: !fromEnv.instructor, admin: !fromEnv.admin },
    file,
  };
}

function newToken(): string {
  return randomBytes(24).toString("base64url");
}

/**
 * Compare a token a client sent with the expected one in constant time, so the
 * time taken says nothing about how many leading characters were right. Both
 * are hashed first: timingSafeEqual needs equal lengths, and the hash hides the
 * expected token's length too.
 */
export function tokenMatches(given: unknown, expected: string): boolean {
  if (typeof given !== "string" || given.length === 0 || given.length > 1024) return false;
  const digest = (s: string) => createHash("sha256").update(s).digest();
  return timingSafeEqual(digest(given), digest(expected));
}

/** The token of an `Authorization: Bearer …` header. */
export function bearerToken(header: string | undefined): string | undefined {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? "");
  return m?.[1];
}

export type Role = "instructor" | "admin";

/** Which role a token gives, if any. The admin may do what the instructor may. */
export function roleOf(token: unknown, tokens: Tokens): Role | undefined {
  // Both comparisons always run: the time taken does not say which one matched.
  const admin = tokenMatches(token, tokens.admin);
  const instructor = tokenMatches(token, tokens.instructor);
  return admin ? "admin" : instructor ? "instructor" : undefined;
}
