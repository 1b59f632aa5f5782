// Pull progress on the terminal, the way `docker pull` shows it.
// On a terminal: one line per layer, redrawn in place with a bar:
//   43c4264eed91: Downloading [=========>              ]  1.21MB/3.62MB
// Elsewhere (a log, a pipe, CI): one plain line each time a layer changes state.
import type { PullProgressEvent, LayerState } from "./pull.ts";

export interface ProgressView {
  update(progress: PullProgressEvent): void;
}

const LABEL: Record<LayerState, string> = {
  waiting: "Waiting",
  downloading: "Downloading",
  extracting: "Extracting",
  done: "Pull complete",
  exists: "Already exists",
};

/** Pick the view for `out`: bars on a terminal, plain lines otherwise. */
export function progressView(out: NodeJS.WritableStream & { isTTY?: boolean; columns?: number }): ProgressView {
  return out.isTTY ? new TerminalView(out) : new PlainView(out);
}

/** A callback for pullImage's onProgress that draws on `out`. */
export function pullProgressPrinter(out: NodeJS.WritableStream & { isTTY?: boolean; columns?: number }): (event: PullProgressEvent) => void {
  const view = progressView(out);
  return (event) => view.update(event);
}

/** One line per state change: readable in a log, no control characters. */
export class PlainView implements ProgressView {
  private readonly states = new Map<string, LayerState>();

  constructor(private readonly out: NodeJS.WritableStream) {}

  update({ id, state }: PullProgressEvent): void {
    if (this.states.get(id) === state) return;
    this.states.set(id, state);
    this.out.write(`${id}: ${LABEL[state]}\n`);
  }
}

/** Redraw in place with ANSI cursor movement. */
export class TerminalView implements ProgressView {
  /** Layer ids in the order their lines were printed. */
  private readonly order: string[] = [];
  private readonly shown = new Map<string, { state: LayerState; at: number }>();
  /** Redraws of a byte count are limited to a few a second; state changes always show. */
  private static readonly MIN_REDRAW_MS = 100;

  constructor(private readonly out: NodeJS.WritableStream & { columns?: number }) {}

  update(progress: PullProgressEvent): void {
    const now = Date.now();
    const last = this.shown.get(progress.id);
    if (last && last.state === progress.state && now - last.at < TerminalView.MIN_REDRAW_MS && progress.current < progress.total) {
      return;
    }
    this.shown.set(progress.id, { state: progress.state, at: now });
    const text = this.fit(formatLine(progress));
    const index = this.order.indexOf(progress.id);
    if (index === -1) {
      // A new layer: its line goes below the others. The cursor always rests
      // at the start of the line after the last layer line.
      this.order.push(progress.id);
      this.out.write(`${text}\n`);
      return;
    }
    const up = this.order.length - index;
    // Up to the layer's line, clear it, write, and back down.
    this.out.write(`\x1b[${up}A\r\x1b[2K${text}\x1b[${up}B\r`);
  }

  /** A line that wraps would break the cursor arithmetic: cut it to the terminal's width. */
  private fit(text: string): string {
    const width = this.out.columns;
    return width && text.length >= width ? text.slice(0, width - 1) : text;
  }
}

const BAR_WIDTH = 50;

export function formatLine({ id, state, current, total }: PullProgressEvent): string {
  const label = `${id}: ${LABEL[state]}`;
  if ((state !== "downloading" && state !== "extracting") || total <= 0) return label;
  const filled = Math.min(BAR_WIDTH, Math.floor((current / total) * BAR_WIDTH));
  const bar = filled >= BAR_WIDTH ? "=".repeat(BAR_WIDTH) : "=".repeat(filled) + ">" + " ".repeat(BAR_WIDTH - filled - 1);
  return `${label} [${bar}]  ${humanSize(current)}/${humanSize(total)}`;
}

/** Sizes as Docker prints them: decimal units, three significant digits ("3.62MB", "125MB"). */
export function humanSize(bytes: number): string {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  // Round before deciding the unit, so that 999999 bytes is "1MB", not "1000kB".
  while (Number(value.toPrecision(3)) >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${unit === 0 ? value : Number(value.toPrecision(3))}${units[unit]}`;
}
