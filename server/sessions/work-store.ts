// Where students' work is kept between sessions: one archive per browser and
// student name (a class sharing a computer keeps each student's apart), for
// PLAYGROUND_KEEP_WORK_DAYS days, in the data directory's work/ folder. The
// record says whose it is, how big, and its digest (checked when it comes back).
import { createHash } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import type { Db } from "../db.ts";

export interface KeptWork {
  studentName: string;
  bytes: number;
  savedAt: Date;
  expiresAt: Date;
}

export interface WorkSettings {
  /** How long work is kept; 0 keeps none. */
  days: number;
  /** An archive larger than this (compressed) is refused. */
  maxBytes: number;
}

export class WorkStore {
  private readonly dir: string;

  constructor(
    private readonly db: Db,
    dataDir: string,
    readonly settings: WorkSettings,
  ) {
    this.dir = path.join(dataDir, "work");
  }

  get enabled(): boolean {
    return this.settings.days > 0;
  }

  /** Where the work of this browser's student goes (the directory is made on first use). */
  async fileFor(cookieHash: string, studentName = ""): Promise<string> {
    await fs.mkdir(this.dir, { recursive: true, mode: 0o700 });
    return path.join(this.dir, `${keyOf(cookieHash, studentName)}.tar.gz`);
  }

  /** The work this browser's student left, if it is still kept. */
  async find(cookieHash: string, studentName = ""): Promise<{ file: string; diffId: string; bytes: number; savedAt: Date } | undefined> {
    if (!this.enabled) return undefined;
    const key = keyOf(cookieHash, studentName);
    const row = await this.db.savedWork.findUnique({ where: { key } });
    if (!row || row.expiresAt.getTime() <= Date.now()) return undefined;
    return { file: path.join(this.dir, `${key}.tar.gz`), diffId: row.diffId, bytes: row.bytes, savedAt: row.savedAt };
  }

  /** Everything kept for a browser, for its start page (one entry per student name used there). */
  async listFor(cookieHash: string): Promise<KeptWork[]> {
    if (!this.enabled) return [];
    const rows = await this.db.savedWork.findMany({ where: { cookieHash, expiresAt: { gt: new Date() } }, orderBy: { savedAt: "desc" } });
    return rows.map(({ studentName, bytes, savedAt, expiresAt }) => ({ studentName, bytes, savedAt, expiresAt }));
  }

  async record(cookieHash: string, studentName: string | undefined, sessionId: string, saved: { bytes: number; diffId: string }): Promise<Date> {
    const key = keyOf(cookieHash, studentName ?? "");
    const expiresAt = new Date(Date.now() + this.settings.days * 24 * 3600 * 1000);
    const data = { cookieHash, studentName: studentName ?? "", sessionId, bytes: saved.bytes, diffId: saved.diffId, savedAt: new Date(), expiresAt };
    await this.db.savedWork.upsert({ where: { key }, create: { key, ...data }, update: data });
    return expiresAt;
  }

  /** Work past its days goes, file and record; returns how many. */
  async expire(now = new Date()): Promise<number> {
    const old = await this.db.savedWork.findMany({ where: { expiresAt: { lte: now } } });
    for (const row of old) await this.forget(row.key);
    return old.length;
  }

  /** Everything kept goes (the admin's reset with ?purge=1). */
  async purge(): Promise<number> {
    const all = await this.db.savedWork.findMany({ select: { key: true } });
    for (const row of all) await this.forget(row.key);
    // Archives without a record (a crash between writing and recording) go too.
    for (const name of await fs.readdir(this.dir).catch(() => [] as string[])) await fs.rm(path.join(this.dir, name), { force: true });
    return all.length;
  }

  private async forget(key: string): Promise<void> {
    await fs.rm(path.join(this.dir, `${key}.tar.gz`), { force: true });
    await this.db.savedWork.deleteMany({ where: { key } });
  }
}

function keyOf(cookieHash: string, studentName: string): string {
  return createHash("sha256").update(`${cookieHash}\0${studentName}`).digest("hex");
}
