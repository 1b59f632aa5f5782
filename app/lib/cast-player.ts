// Plays an asciicast recording into a terminal: play and pause, a speed,
// seeking to any point (backwards: the terminal is reset and the output up to
// that point written at once), markers to jump to. Long pauses are shortened
// to IDLE_LIMIT_S, as asciinema's idle time limit does: a class's recording
// is mostly waiting. All positions are in that shortened time.
//
// The terminal and the clock are passed in, so the player runs (and is
// tested) without a browser.
import { parseSize, type Cast } from "../../server/common/asciicast.ts";

/** Pauses in the recording longer than this are played as this long (seconds). */
export const IDLE_LIMIT_S = 2;
/** How often the position is told while playing (ms), for the slider. */
const TICK_MS = 100;

export interface PlayerScreen {
  write(data: string): void;
  reset(): void;
  resize(cols: number, rows: number): void;
}

export interface PlayerClock {
  now(): number;
  later(run: () => void, ms: number): unknown;
  cancel(handle: unknown): void;
}

export interface Marker {
  time: number;
  label: string;
}

const browserClock: PlayerClock = {
  now: () => performance.now(),
  later: (run, ms) => setTimeout(run, ms),
  cancel: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

export class CastPlayer {
  /** Each event's time in the played (shortened) time. */
  private readonly times: number[];
  readonly duration: number;
  readonly markers: Marker[];
  private next = 0;
  private at = 0;
  private playing = false;
  private speed = 1;
  /** While playing: the wall clock and position when play (or a speed change) began. */
  private anchor = { wall: 0, position: 0 };
  private timer: unknown;

  constructor(
    private readonly cast: Cast,
    private readonly screen: PlayerScreen,
    /** Told whenever the position or the playing state changes. */
    private readonly changed: (position: number, playing: boolean) => void = () => {},
    private readonly clock: PlayerClock = browserClock,
  ) {
    let played = 0;
    let last = 0;
    this.times = cast.events.map(([time]) => {
      played += Math.min(Math.max(0, time - last), IDLE_LIMIT_S);
      last = Math.max(last, time);
      return played;
    });
    this.duration = this.times.at(-1) ?? 0;
    this.markers = cast.events.flatMap(([, code, data], i) => (code === "m" ? [{ time: this.times[i], label: data }] : []));
    this.screen.resize(cast.header.width, cast.header.height);
  }

  get position(): number {
    return this.at;
  }

  get isPlaying(): boolean {
    return this.playing;
  }

  play(): void {
    if (this.playing) return;
    if (this.at >= this.duration) this.seek(0);
    this.playing = true;
    this.anchor = { wall: this.clock.now(), position: this.at };
    this.tick();
  }

  pause(): void {
    if (!this.playing) return;
    this.advance(this.current());
    this.stop();
    this.changed(this.at, false);
  }

  setSpeed(speed: number): void {
    if (this.playing) {
      this.advance(this.current());
      this.anchor = { wall: this.clock.now(), position: this.at };
    }
    this.speed = speed;
  }

  /** To `position` (in played seconds): forwards by playing the events between, backwards by starting over. */
  seek(position: number): void {
    const target = Math.min(Math.max(0, position), this.duration);
    if (target < this.at) {
      this.screen.reset();
      this.screen.resize(this.cast.header.width, this.cast.header.height);
      this.next = 0;
      this.at = 0;
    }
    this.advance(target);
    if (this.playing) this.anchor = { wall: this.clock.now(), position: this.at };
    this.changed(this.at, this.playing);
  }

  dispose(): void {
    this.stop();
  }

  private current(): number {
    return Math.min(this.duration, this.anchor.position + ((this.clock.now() - this.anchor.wall) / 1000) * this.speed);
  }

  private tick(): void {
    this.advance(this.current());
    if (this.at >= this.duration) {
      this.stop();
      this.changed(this.at, false);
      return;
    }
    this.changed(this.at, true);
    // Wake for the next event, or to move the slider on: whichever comes first.
    const untilNext = ((this.times[this.next] - this.at) * 1000) / this.speed;
    this.timer = this.clock.later(() => this.tick(), Math.max(0, Math.min(TICK_MS, untilNext)));
  }

  private stop(): void {
    this.playing = false;
    if (this.timer !== undefined) this.clock.cancel(this.timer);
    this.timer = undefined;
  }

  /** Applies every event up to `position`; output in a row is written at once (a seek over an hour of output is one write). */
  private advance(position: number): void {
    let output = "";
    const flush = () => {
      if (output) this.screen.write(output);
      output = "";
    };
    while (this.next < this.times.length && this.times[this.next] <= position) {
      const [, code, data] = this.cast.events[this.next++];
      if (code === "o") output += data;
      else if (code === "r") {
        const size = parseSize(data);
        if (size) {
          flush();
          this.screen.resize(size.cols, size.rows);
        }
      }
    }
    flush();
    this.at = position;
  }
}
