// Gathers a pty's output into fewer, larger messages. A busy program makes
// node-pty emit many small chunks (often a few bytes each); sending each as
// its own socket.io message would cost more in framing and in the browser's
// per-message work than the text itself.
//
// A chunk that comes after a quiet spell (a keystroke's echo) goes out at
// once, so typing pays no delay. Chunks that follow within `delayMs` of a
// send are held and go out together when that time is up, or as soon as
// `maxChars` have gathered: under a flood, messages are large and few.
export class OutputBatcher {
  private pending: string[] = [];
  private size = 0;
  /** Set while within `delayMs` of the last send. */
  private cooldown: NodeJS.Timeout | undefined;

  constructor(
    private readonly flush: (data: string) => void,
    private readonly delayMs = 5,
    private readonly maxChars = 16 * 1024,
  ) {}

  push(data: string): void {
    this.pending.push(data);
    this.size += data.length;
    if (!this.cooldown || this.size >= this.maxChars) this.send();
  }

  /** Send whatever is pending now (also used before the session ends). */
  drain(): void {
    if (this.cooldown) clearTimeout(this.cooldown);
    this.cooldown = undefined;
    if (this.size > 0) this.send(false);
  }

  private send(rearm = true): void {
    const data = this.pending.join("");
    this.pending = [];
    this.size = 0;
    this.flush(data);
    if (!rearm) return;
    if (this.cooldown) clearTimeout(this.cooldown);
    this.cooldown = setTimeout(() => {
      this.cooldown = undefined;
      if (this.size > 0) this.send();
    }, this.delayMs);
  }
}
