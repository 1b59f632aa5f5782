// The record (SQLite through Prisma, with its query compiler and the
// better-sqlite3 driver adapter). record-file.ts opens the file first and
// applies any migration not yet applied.
import { PrismaBetterSQLite3 } from "@prisma/adapter-better-sqlite3";
import { PrismaClient } from "./generated/prisma/client.ts";
import { BUSY_TIMEOUT_MS, databaseFile, openRecordFile } from "./record-file.ts";

export type Db = PrismaClient;

export async function openDb(dataDir: string): Promise<Db> {
  openRecordFile(dataDir).close();
  return new PrismaClient({ adapter: new PrismaBetterSQLite3({ url: `file:${databaseFile(dataDir)}`, timeout: BUSY_TIMEOUT_MS }) });
}
