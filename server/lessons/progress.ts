// A student's place in a lesson: the open step, the steps passed, since when
// the open step is open, and what its last check said. Plain state: the
// classroom changes it, the session carries it, the pages are shown it.
import type { LessonPlace, LessonState, LessonView } from "../common/protocol.ts";
import type { Lesson } from "./format.ts";

export class LessonProgress {
  checking = false;
  /** What the last check of the open step printed, when it did not pass. */
  message?: string;

  constructor(
    readonly lesson: Lesson,
    public step = 0,
    readonly passed = new Set<number>(),
    public since = new Date(),
  ) {}

  /** Open step `index`; false when there is no such step or it is open already. */
  open(index: number): boolean {
    if (!Number.isInteger(index) || index < 0 || index >= this.lesson.steps.length || index === this.step) return false;
    this.step = index;
    this.since = new Date();
    this.message = undefined;
    return true;
  }

  /** The open step's check passed: it is done, and the next step opens (as a tutorial moves on). */
  pass(index: number): void {
    this.passed.add(index);
    if (index === this.step) {
      this.message = undefined;
      if (index + 1 < this.lesson.steps.length) this.open(index + 1);
    }
  }

  /** The step a check should look at now: the open one, if it has a check and has not passed. */
  due(): number | undefined {
    const step = this.lesson.steps[this.step];
    return step?.check && !this.passed.has(this.step) ? this.step : undefined;
  }

  state(): LessonState {
    return {
      lesson: lessonView(this.lesson),
      step: this.step,
      passed: [...this.passed].sort((a, b) => a - b),
      since: this.since.toISOString(),
      checking: this.checking,
      ...(this.message !== undefined ? { message: this.message } : {}),
    };
  }

  place(): LessonPlace {
    return {
      title: this.lesson.title,
      step: this.step,
      stepTitle: this.lesson.steps[this.step]?.title ?? "",
      steps: this.lesson.steps.length,
      passed: this.passed.size,
      since: this.since.toISOString(),
    };
  }
}

/** What the student's page may see of a lesson: no check script. */
export function lessonView(lesson: Lesson): LessonView {
  return {
    id: lesson.id,
    title: lesson.title,
    intro: lesson.intro,
    steps: lesson.steps.map((s) => ({ title: s.title, body: s.body, hasCheck: s.check !== undefined })),
  };
}
