// Where sessions' recordings live: <data dir>/recordings/<session>.cast (and
// its .state file, see recorder.ts), the directory 0700 and the files 0600,
// as everything in the data directory: a recording holds all a student's
// terminal showed. Recordings are kept PLAYGROUND_RECORDINGS_DAYS days after
// their session ends, and all of them together stay under
// PLAYGROUND_RECORDINGS_MAX (retention.ts), checked at start and every few
// minutes. One recording takes at most a tenth of that limit.
import fs from "node:fs/promises";
import path from "node:path";
import type { Logger } from "pino";
import { SessionId } from "../common/protocol.ts";
import { Recorder, stateFileOf } from "./recorder.ts";
import { retentionPlan, type RecordingFile } from "./retention.ts";

export interface RecordingSettings {
  /** Days a recording is kept after its session ends; 0: sessions are not recorded. */
  days: number;
  /** All recordings together, at most. */
  maxBytes: number;
  /** Keystrokes too (PLAYGROUND_RECORD_INPUT=1). */
  recordInput: boolean;
}

/** What a recording is made of. */
export interface RecordedSession {
  id: string;
  studentName?: string;
  image: string;
  size: { cols: number; rows: number };
}

const RETENTION_EVERY_MS = 10 * 60 * 1000;
const CAST = ".cast";
const MiB = 1024 * 1024;

export class Recordings {
  readonly dir: string;
  private readonly recording = new Map<string, Recorder>();

  constructor(
    dataDir: string,
    readonly settings: RecordingSettings,
    private readonly log: Logger,
  ) {
    this.dir = path.join(dataDir, "recordings");
  }

  get enabled(): boolean {
    return this.settings.days > 0;
  }

  /**
   * A recording for a session, or the one an earlier server process was
   * making of it (`adopted`), ready to follow its terminal (Recorder.follow).
   * Undefined when recordings are off, or the file cannot be made: a session
   * never fails for its recording (the log says why).
   */
  async begin(session: RecordedSession, adopted: boolean): Promise<Recorder | undefined> {
    if (!this.enabled) return undefined;
    const file = this.fileOf(session.id);
    const settings = { recordInput: this.settings.recordInput, maxBytes: Math.max(MiB, Math.floor(this.settings.maxBytes / 10)) };
    const log = this.log.child({ session: session.id });
    try {
      await fs.mkdir(this.dir, { recursive: true, mode: 0o700 });
      await fs.chmod(this.dir, 0o700);
      const earlier = adopted ? await Recorder.resume(file, settings, log) : undefined;
      const recorder =
        earlier ??
        (await Recorder.create(
          file,
          { width: session.size.cols, height: session.size.rows, title: `${session.studentName ?? "(no name)"} · ${session.image}`, env: { TERM: "xterm-256color" } },
          settings,
          log,
        ));
      this.recording.set(session.id, recorder);
      return recorder;
    } catch (error) {
      this.log.error({ session: session.id, err: String(error) }, "could not record the session");
      return undefined;
    }
  }

  /** The session ended, or this server stops: the recording is written out and closed. */
  async finish(sessionId: string): Promise<void> {
    const recorder = this.recording.get(sessionId);
    this.recording.delete(sessionId);
    await recorder?.close();
  }

  /**
   * A session's recording as far as it is written (a live one is written out
   * first), or undefined when there is none. `bytes`: read no further, the
   * rest may be an append under way.
   */
  async find(sessionId: string): Promise<{ file: string; bytes: number } | undefined> {
    if (!SessionId.safeParse(sessionId).success) return undefined;
    const file = this.fileOf(sessionId);
    const live = this.recording.get(sessionId);
    if (live) {
      await live.flush();
      return { file, bytes: live.committedBytes };
    }
    try {
      return { file, bytes: (await fs.stat(file)).size };
    } catch {
      return undefined;
    }
  }

  /** Every recording in the directory, with its size. */
  async list(): Promise<RecordingFile[]> {
    let names: string[];
    try {
      names = await fs.readdir(this.dir);
    } catch {
      return [];
    }
    const files = await Promise.all(
      names
        .filter((name) => name.endsWith(CAST))
        .map(async (name): Promise<RecordingFile | undefined> => {
          const session = name.slice(0, -CAST.length);
          const live = this.recording.get(session);
          try {
            const stat = await fs.stat(path.join(this.dir, name));
            return { session, bytes: live ? live.committedBytes : stat.size, modifiedMs: stat.mtimeMs, live: live !== undefined };
          } catch {
            return undefined; // removed meanwhile
          }
        }),
    );
    return files.filter((f) => f !== undefined);
  }

  /** Applies the retention rules; returns how many recordings were removed. */
  async enforce(now = Date.now()): Promise<number> {
    const plan = retentionPlan(await this.list(), this.settings, now);
    for (const session of plan.remove) {
      const file = this.fileOf(session);
      await Promise.all([fs.rm(file, { force: true }), fs.rm(stateFileOf(file), { force: true })]);
    }
    if (plan.remove.length) this.log.info({ removed: plan.remove.length }, "recordings past their days or over the size limit removed");
    if (plan.keptBytes > this.settings.maxBytes) {
      this.log.warn({ bytes: plan.keptBytes, limit: this.settings.maxBytes }, "the live sessions' recordings alone are over PLAYGROUND_RECORDINGS_MAX");
    }
    return plan.remove.length;
  }

  /** Retention now and every few minutes; returns a function that stops it. */
  startRetention(): () => void {
    const run = () => void this.enforce().catch((error) => this.log.error({ err: String(error) }, "could not apply the recordings' retention"));
    run();
    const timer = setInterval(run, RETENTION_EVERY_MS);
    timer.unref();
    return () => clearInterval(timer);
  }

  private fileOf(sessionId: string): string {
    return path.join(this.dir, `${sessionId}${CAST}`);
  }
}
