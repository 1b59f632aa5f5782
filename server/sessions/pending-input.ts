// How much typed input is waiting to reach a terminal.
//
// A program that does not read its terminal (`sleep` after `stty raw`, a
// stuck process) lets the kernel's small pty buffer fill; from then on
// node-pty keeps everything written to it in a queue of its own, without a
// limit, retrying until the program reads. A browser that keeps sending
// would grow the server's memory without end. node-pty (1.1) neither exposes
// that queue's size nor tells when it drains, and only it knows what the
// kernel took, so its queue is read here: the one place that depends on
// node-pty's internals. The session-relay unit test floods a real pty through
// this, so a node-pty upgrade that changes them fails a test instead of
// silently dropping the limit.
import type { IPty } from "node-pty";

/** Input a session may have waiting for its terminal; more is refused, not queued. */
export const MAX_PENDING_INPUT_BYTES = 1024 * 1024;

interface NodePtyInternals {
  _writeStream?: { _writeQueue?: { buffer: Uint8Array; offset: number }[] };
}

/** Bytes written to `pty` that the terminal has not taken yet. */
export function pendingInputBytes(pty: IPty): number {
  const queue = (pty as unknown as NodePtyInternals)._writeStream?._writeQueue;
  if (!Array.isArray(queue)) {
    throw new Error("this node-pty does not expose its write queue: the input limit cannot be kept (see pending-input.ts)");
  }
  let bytes = 0;
  for (const task of queue) bytes += task.buffer.byteLength - task.offset;
  return bytes;
}
