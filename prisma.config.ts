// Prisma 6 with the JS engine and the better-sqlite3 adapter: works offline
// (no engine download). The database lives in the data directory.
import path from "node:path";
import { defineConfig } from "prisma/config";
import { PrismaBetterSQLite3 } from "@prisma/adapter-better-sqlite3";

export function databaseUrl(): string {
  const dataDir = process.env.PLAYGROUND_DATA_DIR ?? "/var/lib/playground";
  return `file:${path.join(path.resolve(dataDir), "playground.db")}`;
}

export default defineConfig({
  experimental: { adapter: true },
  engine: "js",
  schema: "prisma/schema.prisma",
  migrations: { path: "prisma/migrations" },
  async adapter() {
    return new PrismaBetterSQLite3({ url: databaseUrl() });
  },
});
