// The room's lessons at work: which lesson each session follows, its checks
// run on demand and every few seconds while a step is open, and each
// student's place kept in the record (it survives a server restart).
//
// A check runs from the host, inside the student's container (see
// RunCheck), with the host's own record of that container in its
// environment (check-env.ts). Checks are bounded: a few at a time across the
// room, each with its time limit, and never into the student's terminal.
import type { Logger } from "pino";
import type { LessonSummary } from "../common/protocol.ts";
import type { Db } from "../db.ts";
import type { BackendContainer } from "../runtime/backend.ts";
import type { Session } from "../sessions/session.ts";
import { checkEnvironment } from "./check-env.ts";
import type { Lesson } from "./format.ts";
import { LessonProgress } from "./progress.ts";

/** Runs a check script in a container: its exit code and what it printed. */
export type RunCheck = (
  container: BackendContainer,
  check: { script: string; env: Record<string, string>; timeoutMs: number },
) => Promise<{ code: number; output: string; timedOut: boolean }>;

export interface ClassroomOptions {
  lessons: Lesson[];
  /** The room's lesson for everyone (PLAYGROUND_LESSON); students pick otherwise. */
  fixed?: string;
  runCheck: RunCheck;
  /** What the room's containers may do: a lesson for the nested profile needs a nested room. */
  roomProfile?: () => "default" | "nested";
  db: Db;
  log: Logger;
  /** How often the open step of each session is checked. */
  checkEveryMs?: number;
  /** Checks running at once across the room. */
  maxConcurrentChecks?: number;
  /** A student's place changed (the instructor's list shows it). */
  onChange?: () => void;
}

/** The last line of a failed check's output is shown to the student as a hint: at most this long. */
const MAX_HINT_CHARS = 300;

export class Classroom {
  private readonly byId: Map<string, Lesson>;
  /** Sessions whose place was read back from the record (after a restart) or set. */
  private readonly known = new WeakSet<Session>();
  private running = 0;
  private timer?: NodeJS.Timeout;

  constructor(private readonly options: ClassroomOptions) {
    this.byId = new Map(options.lessons.map((l) => [l.id, l]));
    if (options.fixed !== undefined && !this.byId.has(options.fixed)) {
      throw new Error(`PLAYGROUND_LESSON: no lesson "${options.fixed}" (have: ${[...this.byId.keys()].join(", ") || "none"})`);
    }
  }

  get fixed(): boolean {
    return this.options.fixed !== undefined;
  }

  list(): LessonSummary[] {
    return [...this.byId.values()].map((l) => ({ id: l.id, title: l.title, steps: l.steps.length }));
  }

  /** Check every live session's open step every few seconds. */
  start(sessions: () => Session[]): void {
    this.timer = setInterval(() => {
      for (const session of sessions()) void this.checkDue(session);
    }, this.options.checkEveryMs ?? 4000);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** The session's place, read back from the record the first time (or the room's lesson, for a new session). */
  async ensure(session: Session): Promise<LessonProgress | undefined> {
    if (this.known.has(session)) return session.lesson;
    this.known.add(session);
    const row = await this.options.db.session.findUnique({ where: { id: session.id } });
    const lesson = this.byId.get(row?.lessonId ?? this.options.fixed ?? "");
    if (lesson && row) {
      const passed = new Set((JSON.parse(row.lessonPassed) as number[]).filter((n) => Number.isInteger(n) && n >= 0 && n < lesson.steps.length));
      const step = Math.min(Math.max(row.lessonStep, 0), lesson.steps.length - 1);
      session.lesson = new LessonProgress(lesson, step, passed, row.lessonStepAt ?? new Date());
      if (!row.lessonId) await this.save(session);
    }
    return session.lesson;
  }

  /** The student picks a lesson, or none; refused where the room has one for everyone. */
  async pick(session: Session, id: string | null): Promise<void> {
    if (this.fixed) throw new Error("this room follows one lesson for everyone");
    const lesson = id === null ? undefined : this.byId.get(id);
    if (id !== null && !lesson) throw new Error(`no lesson "${id}"`);
    if (lesson?.settings.profile === "nested" && (this.options.roomProfile?.() ?? "default") !== "nested") {
      throw new Error(`"${lesson.title}" needs containers with the nested profile: ask your instructor to open the room with it`);
    }
    this.known.add(session);
    session.lesson = lesson && new LessonProgress(lesson);
    // Markers in the session's recording: the replay jumps to each step.
    if (lesson) session.mark(`lesson "${lesson.title}", step 1: ${lesson.steps[0].title}`);
    await this.changed(session);
    if (lesson) void this.checkDue(session);
  }

  async open(session: Session, index: number): Promise<void> {
    const progress = await this.ensure(session);
    if (!progress?.open(index)) return;
    session.mark(`step ${index + 1}: ${progress.lesson.steps[index].title}`);
    await this.changed(session);
    void this.checkDue(session);
  }

  /** The "Check" button: check the open step now (even one that passed already: the student sees it hold). */
  async checkNow(session: Session): Promise<void> {
    const progress = await this.ensure(session);
    if (!progress) throw new Error("no lesson is open");
    if (!progress.lesson.steps[progress.step]?.check) throw new Error("this step has nothing to check");
    await this.runCheck(session, progress, progress.step);
  }

  private async checkDue(session: Session): Promise<void> {
    const progress = await this.ensure(session);
    const step = progress?.due();
    if (progress && step !== undefined) await this.runCheck(session, progress, step);
  }

  private async runCheck(session: Session, progress: LessonProgress, index: number): Promise<void> {
    const check = progress.lesson.steps[index].check!;
    const container = session.container;
    if (session.state !== "running" || !container || progress.checking) return;
    if (this.running >= (this.options.maxConcurrentChecks ?? 4)) return; // the next round gets it
    this.running++;
    progress.checking = true;
    session.forEachStudent((s) => s.lesson(progress.state()));
    let passed = false;
    try {
      const env = checkEnvironment(await container.facts());
      const result = await this.options.runCheck(container, { script: check.script, env, timeoutMs: check.timeoutMs });
      passed = result.code === 0 && !result.timedOut;
      if (progress.lesson.steps[progress.step] === progress.lesson.steps[index]) {
        progress.message = passed ? undefined : result.timedOut ? "the check took too long" : hint(result.output);
      }
    } catch (error) {
      this.options.log.warn({ session: session.id, lesson: progress.lesson.id, step: index, err: (error as Error).message }, "a lesson check could not run");
      progress.message = "the check could not run";
    } finally {
      this.running--;
      progress.checking = false;
    }
    if (passed && !progress.passed.has(index)) {
      this.options.log.info({ session: session.id, lesson: progress.lesson.id, step: index }, "lesson step passed");
      progress.pass(index);
      session.mark(`✓ step ${index + 1}: ${progress.lesson.steps[index].title}`);
    }
    if (session.lesson === progress) await this.changed(session);
  }

  /** Tell the student's pages and the instructors, and keep it in the record. */
  private async changed(session: Session): Promise<void> {
    session.forEachStudent((s) => s.lesson(session.lesson?.state() ?? null));
    this.options.onChange?.();
    await this.save(session);
  }

  private async save(session: Session): Promise<void> {
    const p = session.lesson;
    await this.options.db.session.updateMany({
      where: { id: session.id },
      data: p
        ? { lessonId: p.lesson.id, lessonStep: p.step, lessonPassed: JSON.stringify([...p.passed]), lessonStepAt: p.since }
        : { lessonId: null, lessonStep: 0, lessonPassed: "[]", lessonStepAt: null },
    });
  }
}

/** The last non-empty line a failed check printed, as a hint for the student. */
function hint(output: string): string | undefined {
  const line = output.trim().split("\n").pop()?.trim();
  return line ? line.slice(0, MAX_HINT_CHARS) : undefined;
}
