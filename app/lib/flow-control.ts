// Flow control for terminal output. The server keeps a count of characters
// sent but not yet shown and pauses the shell's pty when it grows too large
// (so `yes` cannot fill the server's memory or freeze this page). The page
// tells it, with `ack`, how many characters xterm.js has actually rendered.
// Acks are batched: one message per burst rather than one per chunk.

/** Send at once when this many characters are waiting to be acknowledged. */
const ACK_THRESHOLD = 32 * 1024;
/** Otherwise send within this many milliseconds. */
const ACK_DELAY_MS = 25;

export class AckBatcher {
  private pending = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly send: (chars: number) => void) {}

  /** Counts characters that xterm.js finished rendering. */
  rendered(chars: number): void {
    this.pending += chars;
    if (this.pending >= ACK_THRESHOLD) this.flush();
    else if (this.timer === undefined) this.timer = setTimeout(() => this.flush(), ACK_DELAY_MS);
  }

  flush(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending > 0) this.send(this.pending);
    this.pending = 0;
  }

  /** Forgets unsent counts: after a reconnect the server counts afresh. */
  reset(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.pending = 0;
  }
}

/**
 * Splits keyboard input (a big paste) into messages the server accepts. The
 * server's limit is in UTF-8 bytes; a UTF-16 code unit is at most 3 bytes, so
 * chunks of limit/3 code units always fit. A surrogate pair is never cut.
 */
export function splitInput(data: string, maxBytes: number): string[] {
  const size = Math.floor(maxBytes / 3);
  if (data.length <= size) return [data];
  const chunks: string[] = [];
  let start = 0;
  while (start < data.length) {
    let end = Math.min(start + size, data.length);
    const last = data.charCodeAt(end - 1);
    if (end < data.length && last >= 0xd800 && last <= 0xdbff) end--;
    chunks.push(data.slice(start, end));
    start = end;
  }
  return chunks;
}
