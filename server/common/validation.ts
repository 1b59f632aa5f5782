// Rules more than one part of the playground checks, written once: turning a
// zod failure into one short line a person can read, and what a container's
// hostname may be.
import type { z } from "zod";

export function firstIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  if (!issue) return "invalid value";
  const where = issue.path.length ? `${issue.path.join(".")}: ` : "";
  return `${where}${issue.message}`;
}

/**
 * A container's hostname: DNS labels (letters and digits, "-" inside a label)
 * joined by ".", at most 63 characters. What `run --hostname` accepts, what
 * the gate sets and what the container's /etc/hosts names: nothing that could
 * add a line or another name to a file.
 */
export const HOSTNAME = /^(?=.{1,63}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** Why `hostname` is refused, or undefined when it is a valid hostname. */
export function hostnameProblem(hostname: string): string | undefined {
  return HOSTNAME.test(hostname) ? undefined : `invalid hostname "${hostname}": letters, digits, "-" inside a label and "." between labels, at most 63 characters`;
}
