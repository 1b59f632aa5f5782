// What /api/health reports: is the database answering, and does this host have
// what containers are built from (cgroups, user namespaces, overlayfs, loop
// devices, the tools)? The host checks are `playground doctor`'s: cheap reads
// of /proc, /sys and PATH that make no kernel object, so it may be polled often.
import type { Db } from "../db.ts";
import { checkCgroups, checkLoopDevices, checkOverlayfs, checkEnginePrograms, checkRoot, checkUserNamespaces, type Check } from "../engine/doctor.ts";

export interface Health {
  ok: boolean;
  database: boolean;
  kernel: {
    root: HealthCheck;
    cgroups: HealthCheck;
    userns: HealthCheck;
    overlay: HealthCheck;
    loop: HealthCheck;
    tools: HealthCheck;
  };
}

export interface HealthCheck {
  ok: boolean;
  detail: string;
  fix?: string;
}

function summary(check: Check): HealthCheck {
  return { ok: check.ok, detail: check.detail, ...(check.fix ? { fix: check.fix } : {}) };
}

export async function checkHealth(db: Db): Promise<Health> {
  let database = false;
  try {
    await db.$queryRawUnsafe("SELECT 1");
    database = true;
  } catch {
    database = false;
  }
  const tools = checkEnginePrograms();
  const missing = tools.filter((t) => !t.ok);
  const kernel = {
    root: summary(checkRoot()),
    cgroups: summary(checkCgroups()),
    userns: summary(checkUserNamespaces()),
    overlay: summary(checkOverlayfs()),
    loop: summary(checkLoopDevices()),
    tools: missing.length
      ? { ok: false, detail: `missing: ${missing.map((t) => t.name).join(", ")}`, fix: [...new Set(missing.map((t) => t.fix))].join("; ") }
      : { ok: true, detail: tools.map((t) => t.name).join(", ") },
  };
  const ok = database && Object.values(kernel).every((c) => c.ok);
  return { ok, database, kernel };
}
