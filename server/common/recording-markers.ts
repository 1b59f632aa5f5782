// The markers ("m" events) the playground puts in its recordings, so the
// replay can jump to them: how the container was built (when it was ready),
// and later a lesson's steps. The build marker's label is the whole list, a
// step a line after its first line, so the recording alone tells how the
// container it shows was made, long after the container is gone.
import type { StepInfo } from "./protocol.ts";

/** The first words of a build marker's label. */
export const BUILD_MARKER = "How was this built?";

export function buildStepsMarker(steps: StepInfo[]): string {
  const total = steps.reduce((sum, step) => sum + (step.ms ?? 0), 0);
  const lines = steps.map((step, i) => `${i + 1}. ${step.title}${step.ms === undefined ? "" : ` (${formatMs(step.ms)})`}: ${step.command.replace(/\n/g, " ")}`);
  return [`${BUILD_MARKER} ${steps.length} steps, ${formatMs(total)}`, ...lines].join("\n");
}

/** The line a marker is listed by: its first. */
export function markerTitle(label: string): string {
  const newline = label.indexOf("\n");
  return newline < 0 ? label : label.slice(0, newline);
}

/** How long a step took, as the build list shows it: 0.25 → "0.25 ms", 120.4 → "120 ms". */
export function formatMs(ms: number): string {
  return ms >= 100 ? `${Math.round(ms)} ms` : `${Math.round(ms * 100) / 100} ms`;
}
