// A terminal, as the sessions layer sees it: wherever the program behind it
// runs (a shim on this host today; a pod's exec stream some day), a session
// types into it, reads from it, sizes it, and holds it back when its readers
// fall behind.
export interface Terminal {
  /** Keystrokes. False when refused: the program has left too much earlier input unread. */
  write(data: string): boolean;
  resize(cols: number, rows: number): void;
  /** Stop taking the program's output: once its buffer is full, the program blocks in write(). */
  pause(): void;
  resume(): void;
  /** Output as it comes, as text. Returns a function that stops the listening. */
  onData(listener: (data: string) => void): () => void;
  /** What the screen showed lately, for a page that (re)attaches. */
  replay(): Promise<string>;
  /** The terminal closed: its program exited, or the link to it broke. */
  onExit(listener: () => void): () => void;
}
