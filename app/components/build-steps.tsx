"use client";
// "How was this built?": the steps the engine took to make this student's
// container, in order, each with the shell command that does the same by hand
// and how long it took. Instructors open the same list for any session.
// A container is no magic box: it is a few namespaces, a root filesystem, a
// veth pair and some cgroup files, and this list shows exactly which.
import { useEffect, useRef } from "react";
import type { SessionInfo } from "../../server/common/protocol.ts";
import { formatMs } from "../../server/common/recording-markers.ts";

interface Props {
  steps: SessionInfo["steps"];
  onClose(): void;
  title?: string;
}

export function BuildSteps({ steps, onClose, title = "How your container was built" }: Props) {
  const closeButton = useRef<HTMLButtonElement>(null);

  useEffect(() => {
    // Focus moves into the panel so Escape and Tab act here, not in the shell.
    closeButton.current?.focus();
    const onKey = (event: KeyboardEvent) => {
      if (event.key === "Escape") {
        event.preventDefault();
        onClose();
      }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [onClose]);

  return (
    <section className="steps-panel" role="dialog" aria-labelledby="steps-title" data-testid="build-steps">
      <div className="steps-header">
        <h2 id="steps-title">{title}</h2>
        <button ref={closeButton} className="small" onClick={onClose}>
          Close
        </button>
      </div>
      <p className="hint">
        Each step the playground took, in order, with the command that does the same by hand on a Linux host (as root), and
        how long it took.
      </p>
      <ol className="steps">
        {steps.map((step, index) => (
          <li key={index}>
            <span className="step-title">{step.title}</span>
            {step.ms !== undefined && <span className="step-time">{formatMs(step.ms)}</span>}
            <pre className="step-command">{step.command}</pre>
          </li>
        ))}
      </ol>
    </section>
  );
}
