// A container can print before whoever started it is listening: a shell's
// first prompt often comes while run() is still returning. These keep that
// early output until the first reader arrives, so nothing is lost.
import type { ChildProcess } from "node:child_process";
import { PassThrough } from "node:stream";
import type { IDisposable, IPty } from "node-pty";

/** Most early terminal output kept for the first reader; older output is dropped beyond it. */
const MAX_HELD_CHARS = 1024 * 1024;

/**
 * Node discards a child's unread output once it exits (it resumes stdio no one
 * reads, so that a pipe cannot hold the child up). The child's stdout and
 * stderr are replaced by streams of our own that keep the output until read,
 * and push back on the container once 16 KiB wait unread, as a pipe would.
 */
export function holdPipeOutput(child: ChildProcess): void {
  for (const name of ["stdout", "stderr"] as const) {
    const original = child[name];
    if (!original) continue;
    const kept = new PassThrough();
    original.pipe(kept);
    child[name] = kept;
  }
}

/**
 * node-pty hands output to the listeners present when it arrives, and to no
 * one when there are none. The returned terminal is the same one, except
 * that its first onData listener also receives everything printed before it.
 */
export function holdPtyOutput(pty: IPty): IPty {
  let held: string[] | undefined = [];
  let heldChars = 0;
  const listeners = new Set<(data: string) => void>();
  pty.onData((data) => {
    if (held) {
      held.push(data);
      heldChars += data.length;
      while (heldChars > MAX_HELD_CHARS && held.length > 1) heldChars -= held.shift()!.length;
      return;
    }
    for (const listener of listeners) listener(data);
  });
  const onData = (listener: (data: string) => void): IDisposable => {
    listeners.add(listener);
    const backlog = held;
    held = undefined;
    for (const data of backlog ?? []) listener(data);
    return { dispose: () => listeners.delete(listener) };
  };
  return new Proxy(pty, {
    get(target, property) {
      if (property === "onData") return onData;
      const value = Reflect.get(target, property, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}
