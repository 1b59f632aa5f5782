// The recent output of a terminal, kept so that a browser that reloads (or
// reconnects after a dropped network) sees what was on its screen. Bounded by
// a number of characters: the oldest output is forgotten first, so a session
// that prints for hours holds no more than `limit` characters here.
export class Scrollback {
  private chunks: string[] = [];
  private size = 0;

  constructor(private readonly limit: number) {}

  append(data: string): void {
    if (data.length >= this.limit) {
      this.chunks = [data.slice(data.length - this.limit)];
      this.size = this.limit;
      return;
    }
    this.chunks.push(data);
    this.size += data.length;
    while (this.size > this.limit) {
      const first = this.chunks[0];
      const excess = this.size - this.limit;
      if (first.length <= excess) {
        this.chunks.shift();
        this.size -= first.length;
      } else {
        this.chunks[0] = first.slice(excess);
        this.size -= excess;
      }
    }
  }

  /** Everything kept, oldest first, as one string. */
  text(): string {
    if (this.chunks.length > 1) this.chunks = [this.chunks.join("")];
    return this.chunks[0] ?? "";
  }

  get length(): number {
    return this.size;
  }
}
