// A lock shared by every playground process on the host (the server and any
// number of CLI commands), for the few steps that must not interleave: making
// or removing the bridge, and handing out addresses. It is a file created with
// O_EXCL holding the owner's pid; a lock whose owner died (a CLI killed with
// SIGKILL) is taken over rather than waited on forever.
import fs from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { processAlive } from "./process.ts";

export async function withLock<T>(file: string, work: () => Promise<T>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const handle = await fs.open(file, "wx", 0o600);
      await handle.writeFile(String(process.pid));
      await handle.close();
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      const owner = Number(await fs.readFile(file, "utf8").catch(() => ""));
      // An empty file is a lock being written this instant: wait for it.
      if (owner > 0 && owner !== process.pid && !processAlive(owner)) {
        await fs.rm(file, { force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${file} (held by pid ${owner || "?"})`);
      await sleep(20);
    }
  }
  try {
    return await work();
  } finally {
    await fs.rm(file, { force: true });
  }
}
