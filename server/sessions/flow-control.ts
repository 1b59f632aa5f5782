// Flow control between one terminal (a pty) and the browsers reading it.
//
// A program such as `yes` writes far faster than a browser can draw. Without
// a brake, the server would queue the output for the slow reader without end
// and the page would be busy drawing minutes of stale text, so that even
// Ctrl-C seems to do nothing. The brake is the scheme xterm.js documents:
// every browser tells the server how many characters it has drawn (an `ack`);
// the server counts, per reader, what it sent that is not yet acknowledged.
// When any reader is more than `high` characters behind, the pty is paused:
// node-pty stops reading from it, the kernel's pty buffer fills, and the
// program writing blocks. When every reader is back under `low`, reading
// resumes. Memory is bounded by `high` per reader, not by how much is printed.
//
// The two marks trade throughput against responsiveness: a high mark that is
// too large keeps a lot of text in flight (Ctrl-C appears to lag behind it);
// too small, and the pty stops and starts constantly. The gap between the
// marks keeps it from flapping on every chunk.
export const HIGH_WATERMARK = 128 * 1024;
export const LOW_WATERMARK = 32 * 1024;

export interface Pausable {
  pause(): void;
  resume(): void;
}

export class FlowControl {
  private readonly unacked = new Map<string, number>();
  private paused = false;

  constructor(
    private readonly target: Pausable,
    private readonly high = HIGH_WATERMARK,
    private readonly low = LOW_WATERMARK,
  ) {}

  /** A reader joined: it owes nothing yet. */
  add(reader: string): void {
    this.unacked.set(reader, 0);
  }

  /** A reader left (closed its page, lost its network): it no longer holds the pty back. */
  remove(reader: string): void {
    this.unacked.delete(reader);
    this.update();
  }

  sent(reader: string, chars: number): void {
    const owed = this.unacked.get(reader);
    if (owed === undefined) return;
    this.unacked.set(reader, owed + chars);
    this.update();
  }

  /**
   * The reader drew `chars` more characters. A reader cannot acknowledge more
   * than it was sent: credit never goes below zero, so a lying browser gains
   * nothing.
   */
  acked(reader: string, chars: number): void {
    const owed = this.unacked.get(reader);
    if (owed === undefined) return;
    this.unacked.set(reader, Math.max(0, owed - chars));
    this.update();
  }

  /** Characters sent to `reader` and not yet acknowledged. */
  behind(reader: string): number {
    return this.unacked.get(reader) ?? 0;
  }

  get isPaused(): boolean {
    return this.paused;
  }

  private update(): void {
    let worst = 0;
    for (const owed of this.unacked.values()) worst = Math.max(worst, owed);
    if (!this.paused && worst > this.high) {
      this.paused = true;
      this.target.pause();
    } else if (this.paused && worst <= this.low) {
      this.paused = false;
      this.target.resume();
    }
  }
}
