// The record's SQLite file, opened with the driver itself (better-sqlite3,
// the one Prisma's adapter drives too), with every migration applied. Prisma
// (db.ts) opens it through here; so does `playground ps`, which only reads a
// table and must not pay Prisma's start (its query compiler is WebAssembly:
// ~150 ms before the first query, against a few ms for the driver).
//
// Migrations are applied in-process: `prisma migrate deploy` costs seconds
// and a CLI that must feel instant cannot pay that on every command. Applied
// migrations are written to Prisma's own `_prisma_migrations` table with
// Prisma's checksum, so `prisma migrate status` agrees with what this file did.
import { createHash, randomUUID } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import { repositoryRoot } from "./repository.ts";

const MIGRATIONS = path.join("prisma", "migrations");
/** Several CLI processes and the server may write at once: wait for the lock rather than failing with SQLITE_BUSY. */
export const BUSY_TIMEOUT_MS = 10_000;

export function databaseFile(dataDir: string): string {
  return path.join(dataDir, "playground.db");
}

/** The record of `dataDir` (made when missing), up to date with the migrations; the caller closes it. */
export function openRecordFile(dataDir: string): Database.Database {
  // 0700: nothing of the playground's state is any other host user's business.
  // (Containers do not need to pass through: their shim opens their root for them.)
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  fs.chmodSync(dataDir, 0o700);
  const file = databaseFile(dataDir);
  const db = new Database(file, { timeout: BUSY_TIMEOUT_MS });
  try {
    applyMigrations(db);
    fs.chmodSync(file, 0o600);
    return db;
  } catch (error) {
    db.close();
    throw error;
  }
}

function applyMigrations(db: Database.Database): void {
  db.pragma("journal_mode = WAL");
  db.exec(`CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id" TEXT PRIMARY KEY NOT NULL, "checksum" TEXT NOT NULL, "finished_at" DATETIME,
    "migration_name" TEXT NOT NULL, "logs" TEXT, "rolled_back_at" DATETIME,
    "started_at" DATETIME NOT NULL DEFAULT current_timestamp,
    "applied_steps_count" INTEGER UNSIGNED NOT NULL DEFAULT 0)`);
  const migrationsDir = path.join(repositoryRoot(import.meta.url, MIGRATIONS), MIGRATIONS);
  const names = fs
    .readdirSync(migrationsDir, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort();
  const applied = () => new Set(db.prepare(`SELECT migration_name FROM "_prisma_migrations" WHERE finished_at IS NOT NULL`).pluck().all() as string[]);
  // Up to date (nearly always): no write lock taken, so a reader such as `ps` never waits for a busy server's writes.
  const before = applied();
  if (names.every((name) => before.has(name))) return;
  // BEGIN IMMEDIATE: two processes starting at once must not both apply a migration.
  const apply = db.transaction(() => {
    const done = applied();
    for (const name of names) {
      if (done.has(name)) continue;
      const sql = fs.readFileSync(path.join(migrationsDir, name, "migration.sql"), "utf8");
      db.exec(sql);
      db.prepare(
        `INSERT INTO "_prisma_migrations" (id, checksum, finished_at, migration_name, applied_steps_count)
         VALUES (?, ?, current_timestamp, ?, 1)`,
      ).run(randomUUID(), createHash("sha256").update(sql).digest("hex"), name);
    }
  });
  apply.immediate();
}
