// The reaper ends sessions nobody is using, so that a classroom's forgotten
// tabs do not hold containers (memory, processes, addresses) all day:
//  - grace: no page has been attached for this long (the tab was closed, the
//    laptop went to sleep). Short enough to free places, long enough to
//    survive a reload or a flaky network;
//  - idle: attached, but nothing was typed for this long;
//  - lifetime: no session lasts longer than this, busy or not (unless the
//    instructor gives it more time).
// Each reason is told to the student in words, with the limit that applied.
import type { Logger } from "pino";
import type { Session } from "./session.ts";
import type { EndCause, SessionLimits, SessionRegistry } from "./registry.ts";

/** Why `session` should end now (in words, and in a word), or undefined while it may go on. */
export function reapReason(session: Session, limits: SessionLimits, now: number): { reason: string; cause: EndCause } | undefined {
  if (session.state === "ended") return undefined;
  // An instance ends with the session it belongs to, by that session's rules.
  if (session.parent) return undefined;
  // The lifetime's end: the limit from the start, unless an instructor extended it.
  if (now >= session.expiresAt.getTime()) {
    return { reason: `the session reached its time limit of ${describeDuration(session.expiresAt.getTime() - session.createdAt.getTime())}`, cause: "lifetime" };
  }
  const detachedSince = session.familyDetachedSince();
  if (detachedSince && now - detachedSince.getTime() >= limits.graceMs) {
    return { reason: `no browser was attached for ${describeDuration(limits.graceMs)}`, cause: "no-browser" };
  }
  if (session.state === "running" && now - session.lastInputAt.getTime() >= limits.idleMs) {
    return { reason: `nothing was typed for ${describeDuration(limits.idleMs)}`, cause: "idle" };
  }
  return undefined;
}

/** "4 hours", "30 minutes", "90 seconds". */
export function describeDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  const unit = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;
  if (s % 3600 === 0) return unit(s / 3600, "hour");
  if (s % 60 === 0) return unit(s / 60, "minute");
  return unit(s, "second");
}

/**
 * Check every session periodically. The period follows the shortest limit
 * (a quarter of it, between 250 ms and 10 s), so a limit is enforced within
 * about a quarter of its length. Returns a function that stops the reaper.
 */
export function startReaper(registry: SessionRegistry, log: Logger): () => void {
  const { graceMs, idleMs, lifetimeMs } = registry.limits;
  const periodMs = Math.min(10_000, Math.max(250, Math.min(graceMs, idleMs, lifetimeMs) / 4));
  const timer = setInterval(() => {
    const now = Date.now();
    for (const session of registry.live()) {
      const reaped = reapReason(session, registry.limits, now);
      if (!reaped) continue;
      registry.end(session, reaped.reason, reaped.cause).catch((error) => log.error({ session: session.id, err: String(error) }, "reaping failed"));
    }
  }, periodMs);
  timer.unref();
  return () => clearInterval(timer);
}
