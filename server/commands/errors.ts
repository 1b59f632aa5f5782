// Errors the CLI reports as one line. Anything the engine throws on purpose
// carries a message meant for the user; an unexpected error still becomes a
// single line (its message), never a stack trace, unless PLAYGROUND_DEBUG is set.

/** Wrong flags or arguments: reported with exit code 2, as getopt tools do. */
export class UsageError extends Error {}

export function userMessage(error: unknown): string {
  if (process.env.PLAYGROUND_DEBUG && error instanceof Error && error.stack) return error.stack;
  if (error instanceof Error) return error.message;
  return String(error);
}
