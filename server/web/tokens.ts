// The room's secrets: the instructor's and the admin's tokens, and the join
// code students type to get a shell. Set them with PLAYGROUND_INSTRUCTOR_TOKEN,
// PLAYGROUND_ADMIN_TOKEN and PLAYGROUND_JOIN_CODE; when unset, one is made at
// first start and kept in the data directory (readable by root only), so it
// survives restarts and can be read back from the log or the file. The join
// code "none" opens the room to anyone who can reach it (a trusted LAN).
import { createHash, randomBytes, randomInt, timingSafeEqual } from "node:crypto";
import fs from "node:fs";
import path from "node:path";

export interface Tokens {
  instructor: string;
  admin: string;
  /** What students type to join, or null when the room is open to all. */
  joinCode: string | null;
  /** Which came from the file (generated now or at an earlier start), not from the environment. */
  fromFile: { instructor: boolean; admin: boolean; joinCode: boolean };
  file: string;
}

export function tokensFile(dataDir: string): string {
  return path.join(dataDir, "tokens.json");
}

export function loadTokens(dataDir: string, fromEnv: { instructor?: string; admin?: string; joinCode?: string }): Tokens {
  const file = tokensFile(dataDir);
  let stored: { instructor?: unknown; admin?: unknown; joinCode?: unknown } = {};
  try {
    stored = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw new Error(`cannot read ${file}: ${String(error)}`);
  }
  const valid = (t: unknown): t is string => typeof t === "string" && t.length >= 16;
  const keep = {
    instructor: valid(stored.instructor) ? stored.instructor : newToken(),
    admin: valid(stored.admin) ? stored.admin : newToken(),
    joinCode: typeof stored.joinCode === "string" && JOIN_CODE.test(stored.joinCode) ? stored.joinCode : newJoinCode(),
  };
  if (keep.instructor !== stored.instructor || keep.admin !== stored.admin || keep.joinCode !== stored.joinCode) {
    fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    // Written to a temporary file first: a crash never leaves a half-written token file.
    const temp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(temp, JSON.stringify(keep, null, 2) + "\n", { mode: 0o600 });
    fs.renameSync(temp, file);
  }
  fs.chmodSync(file, 0o600);
  const tokens = {
    instructor: fromEnv.instructor ?? keep.instructor,
    admin: fromEnv.admin ?? keep.admin,
    joinCode: fromEnv.joinCode === "none" ? null : (fromEnv.joinCode ?? keep.joinCode),
    fromFile: { instructor: !fromEnv.instructor, admin: !fromEnv.admin, joinCode: !fromEnv.joinCode },
    file,
  };
  // The same secret for both would make every instructor an admin.
  if (tokens.instructor === tokens.admin) throw new Error("the instructor and admin tokens are the same: give PLAYGROUND_ADMIN_TOKEN a token of its own");
  return tokens;
}

/** Letters and digits that cannot be mistaken for one another when read off a projector (no 0/O, 1/I/L). */
const JOIN_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ";
const JOIN_CODE = /^[2-9A-HJKMNP-Z]{6}$/;

function newJoinCode(): string {
  return Array.from({ length: 6 }, () => JOIN_ALPHABET[randomInt(JOIN_ALPHABET.length)]).join("");
}

/** Whether a student's code opens the room: case and spaces do not matter, the comparison takes constant time. */
export function joinCodeMatches(given: unknown, code: string | null): boolean {
  if (code === null) return true;
  if (typeof given !== "string") return false;
  return tokenMatches(given.replace(/\s+/g, "").toUpperCase(), code.toUpperCase());
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
