"use client";
// The lesson beside the terminal: the steps, the open one's text, a ✓ on
// every step whose check passed (checked from the host, every few seconds and
// on "Check"), and the hint a failed check left. Without a room lesson the
// student picks one, or none.
import type { LessonState, LessonSummary } from "../../server/common/protocol.ts";
import { Markdown } from "../lib/markdown.tsx";

interface Props {
  lessons: LessonSummary[];
  /** The room has one lesson for everyone: no picking. */
  fixed: boolean;
  state: LessonState | null;
  onPick(id: string | null): void;
  onStep(index: number): void;
  onCheck(): void;
  onCollapse(): void;
}

export function LessonPanel({ lessons, fixed, state, onPick, onStep, onCheck, onCollapse }: Props) {
  const header = (
    <div className="lesson-header">
      <h2>{state ? state.lesson.title : "Lessons"}</h2>
      <button className="small" onClick={onCollapse} title="Hide the lesson" aria-label="Hide the lesson">
        ⟩
      </button>
    </div>
  );
  if (!state) {
    return (
      <aside className="lesson-panel" data-testid="lesson-panel">
        {header}
        {lessons.length === 0 ? (
          <p className="hint">No lessons here: the terminal is yours.</p>
        ) : (
          <>
            <p className="hint">Pick a lesson to follow beside your terminal:</p>
            <ul className="lesson-list">
              {lessons.map((l) => (
                <li key={l.id}>
                  <button onClick={() => onPick(l.id)} data-testid={`lesson-${l.id}`}>
                    {l.title} <span className="muted">· {l.steps} steps</span>
                  </button>
                </li>
              ))}
            </ul>
          </>
        )}
      </aside>
    );
  }
  const { lesson, step, passed } = state;
  const open = lesson.steps[step];
  const done = passed.length === lesson.steps.filter((s) => s.hasCheck).length;
  return (
    <aside className="lesson-panel" data-testid="lesson-panel">
      {header}
      <ol className="lesson-steps">
        {lesson.steps.map((s, i) => (
          <li key={i} className={i === step ? "open" : undefined}>
            <button onClick={() => onStep(i)} data-testid={`lesson-step-${i}`} aria-current={i === step ? "step" : undefined}>
              <span className="tick" data-testid={passed.includes(i) ? `passed-${i}` : undefined}>
                {passed.includes(i) ? "✓" : s.hasCheck ? "○" : "·"}
              </span>
              {s.title}
            </button>
          </li>
        ))}
      </ol>
      {step === 0 && lesson.intro && (
        <div className="lesson-intro">
          <Markdown text={lesson.intro} />
        </div>
      )}
      <section className="lesson-step" data-testid="lesson-step">
        <h3>
          {step + 1}. {open.title}
        </h3>
        <Markdown text={open.body} />
        {open.hasCheck && (
          <div className="lesson-check">
            {passed.includes(step) ? (
              <span className="passed">✓ Done</span>
            ) : (
              <>
                <button className="primary" onClick={onCheck} disabled={state.checking} data-testid="lesson-check">
                  {state.checking ? "Checking…" : "Check"}
                </button>
                {state.message && (
                  <span className="hint" data-testid="lesson-hint">
                    Not yet: {state.message}
                  </span>
                )}
              </>
            )}
          </div>
        )}
        <div className="lesson-nav">
          <button className="small" onClick={() => onStep(step - 1)} disabled={step === 0}>
            ← Back
          </button>
          <button className="small" onClick={() => onStep(step + 1)} disabled={step + 1 >= lesson.steps.length}>
            Next →
          </button>
        </div>
      </section>
      {done && <p className="lesson-done" data-testid="lesson-done">Every check passed: well done.</p>}
      {!fixed && (
        <button className="small link" onClick={() => onPick(null)}>
          Leave this lesson
        </button>
      )}
    </aside>
  );
}
