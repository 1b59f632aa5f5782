// What `ps` shows of each container: its record, with "dead" where the record
// says alive but its process is gone. Read two ways, through one mapping
// (`summarize`): by the engine through Prisma, and by `playground ps` from the
// record's file with the driver alone (record-file.ts), because a listing
// must answer in a few milliseconds and Prisma's start costs ~150 ms.
import type { Db } from "../../db.ts";
import { openRecordFile } from "../../record-file.ts";
import { isLive } from "./record.ts";

export interface ContainerSummary {
  id: string;
  name: string;
  image: string;
  command: string[];
  /** created | running | exited, or "dead" when the record says running but the process is gone. */
  state: string;
  pid: number | null;
  ip: string | null;
  hostname: string;
  exitCode: number | null;
  oomKilled: boolean;
  autoRemove: boolean;
  createdAt: Date;
  startedAt: Date | null;
  endedAt: Date | null;
}

/** The columns of a Container row a summary is made of, typed as Prisma returns them. */
interface ContainerRow {
  id: string;
  name: string;
  image: string;
  command: string;
  state: string;
  pid: number | null;
  ownerPid: number | null;
  ip: string | null;
  hostname: string;
  exitCode: number | null;
  oomKilled: boolean;
  autoRemove: boolean;
  createdAt: Date;
  startedAt: Date | null;
  endedAt: Date | null;
}

export interface ListOptions {
  /** Every container, exited and dead ones too (`ps -a`); otherwise those created or running. */
  all?: boolean;
}

/** Newest first (ties by id): both readers sort the same way. */
export async function listContainers(db: Db, options: ListOptions = {}): Promise<ContainerSummary[]> {
  return summarize(await db.container.findMany({ orderBy: [{ createdAt: "desc" }, { id: "asc" }] }), options);
}

/** The same list, read from the record of `dataDir` without Prisma. */
export function listContainersFromFile(dataDir: string, options: ListOptions = {}): ContainerSummary[] {
  const db = openRecordFile(dataDir);
  try {
    const rows = db
      .prepare(
        `SELECT id, name, image, command, state, pid, ownerPid, ip, hostname, exitCode, oomKilled, autoRemove, createdAt, startedAt, endedAt
         FROM "Container" ORDER BY createdAt DESC, id ASC`,
      )
      .all() as SqliteContainerRow[];
    return summarize(rows.map(fromSqlite), options);
  } finally {
    db.close();
  }
}

function summarize(rows: ContainerRow[], options: ListOptions): ContainerSummary[] {
  return rows
    .map((row) => ({
      id: row.id,
      name: row.name,
      image: row.image,
      command: JSON.parse(row.command) as string[],
      state: row.state !== "exited" && !isLive(row) ? "dead" : row.state,
      pid: row.pid,
      ip: row.ip,
      hostname: row.hostname,
      exitCode: row.exitCode,
      oomKilled: row.oomKilled,
      autoRemove: row.autoRemove,
      createdAt: row.createdAt,
      startedAt: row.startedAt,
      endedAt: row.endedAt,
    }))
    .filter((c) => options.all || c.state === "running" || c.state === "created");
}

/** A row as SQLite stores it: booleans as 0/1, times as ISO 8601 text (or epoch milliseconds, which Prisma's adapter also reads). */
type SqliteContainerRow = Omit<ContainerRow, "oomKilled" | "autoRemove" | "createdAt" | "startedAt" | "endedAt"> & {
  oomKilled: number;
  autoRemove: number;
  createdAt: string | number;
  startedAt: string | number | null;
  endedAt: string | number | null;
};

function fromSqlite(row: SqliteContainerRow): ContainerRow {
  return {
    ...row,
    oomKilled: row.oomKilled === 1,
    autoRemove: row.autoRemove === 1,
    createdAt: new Date(row.createdAt),
    startedAt: row.startedAt === null ? null : new Date(row.startedAt),
    endedAt: row.endedAt === null ? null : new Date(row.endedAt),
  };
}
