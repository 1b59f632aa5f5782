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
  /**
   * Output as it comes, as text. `end`, when known, counts the bytes the
   * program had written up to the end of this text (everything since it
   * started): a reader that must neither miss nor repeat output (a recording)
   * keeps it. Returns a function that stops the listening.
   */
  onData(listener: (data: string, end?: number) => void): () => void;
  /** What the screen showed lately, for a page that (re)attaches. */
  replay(): Promise<string>;
  /**
   * The output from byte `from` on, as far as the terminal still holds it, for
   * a reader that was away (a recording across a server restart): the text,
   * the byte count it ends at, and how many bytes after `from` are no longer
   * held. Answered in order with onData: the text onData gives after the
   * answer continues from `end`. Never answered if the terminal closes first.
   */
  catchUp(from: number, answer: (text: string, end: number, lost: number) => void): void;
  /** The terminal closed: its program exited, or the link to it broke. */
  onExit(listener: () => void): () => void;
}
