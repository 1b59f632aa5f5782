// Which recordings go: those of ended sessions past their days, then, while
// all recordings together are over the size limit, the oldest of the ended
// ones. A live session's recording is never removed (it is being written);
// when live ones alone are over the limit, nothing more can be done and the
// caller is told.

export interface RecordingFile {
  session: string;
  bytes: number;
  /** Last written: an ended session's recording is not written any more, so this is about when it ended. */
  modifiedMs: number;
  live: boolean;
}

export interface RetentionRules {
  days: number;
  maxBytes: number;
}

export interface RetentionPlan {
  /** Sessions whose recordings go, oldest first. */
  remove: string[];
  /** Bytes the recordings that stay hold. */
  keptBytes: number;
}

const DAY_MS = 24 * 3600 * 1000;

export function retentionPlan(files: RecordingFile[], rules: RetentionRules, now: number): RetentionPlan {
  const oldestFirst = [...files].sort((a, b) => a.modifiedMs - b.modifiedMs);
  const remove = new Set<string>();
  for (const f of oldestFirst) if (!f.live && now - f.modifiedMs > rules.days * DAY_MS) remove.add(f.session);
  let keptBytes = files.filter((f) => !remove.has(f.session)).reduce((sum, f) => sum + f.bytes, 0);
  for (const f of oldestFirst) {
    if (keptBytes <= rules.maxBytes) break;
    if (f.live || remove.has(f.session)) continue;
    remove.add(f.session);
    keptBytes -= f.bytes;
  }
  return { remove: oldestFirst.filter((f) => remove.has(f.session)).map((f) => f.session), keptBytes };
}
