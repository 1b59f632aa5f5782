// asciicast v2, the format asciinema records and plays
// (https://docs.asciinema.org/manual/asciicast/v2/): newline-delimited JSON,
// a header object on the first line (version 2, the terminal's width and
// height, the start as a Unix timestamp, a title, some environment), then one
// event a line, `[seconds since the start, code, data]`:
//   "o" output, "i" input, "r" a resize ("COLSxROWS"), "m" a marker (a label).
// Written by the server's recorder, read by the instructor's replay in the
// browser: no Node import here.

export interface CastHeader {
  version: 2;
  width: number;
  height: number;
  /** Unix time of the start, in whole seconds. */
  timestamp?: number;
  title?: string;
  env?: Record<string, string>;
}

export type CastCode = "o" | "i" | "r" | "m";
export type CastEvent = [time: number, code: CastCode, data: string];

/** The header line, with its newline. */
export function headerLine(header: CastHeader): string {
  return `${JSON.stringify(header)}\n`;
}

/**
 * One event line, with its newline. Times are kept to the microsecond, as
 * asciinema writes them; JSON escapes every control character of the data,
 * so an event is always exactly one line.
 */
export function eventLine(time: number, code: CastCode, data: string): string {
  return `${JSON.stringify([Math.round(time * 1e6) / 1e6, code, data])}\n`;
}

/** "r" data: "120x40". */
export function sizeData(cols: number, rows: number): string {
  return `${cols}x${rows}`;
}

/** "120x40" → { cols, rows }, or undefined when it is not a size. */
export function parseSize(data: string): { cols: number; rows: number } | undefined {
  const m = /^(\d{1,5})x(\d{1,5})$/.exec(data);
  return m ? { cols: Number(m[1]), rows: Number(m[2]) } : undefined;
}

export interface Cast {
  header: CastHeader;
  events: CastEvent[];
}

/** A recording that cannot be read as asciicast v2, with the line that says why. */
export class CastError extends Error {}

/**
 * Reads a whole recording. A last line cut short (a live recording read
 * while it was written, a crash mid-line) is left out; any other line that is
 * not an event is an error. Events of codes other than o, i, r and m are
 * skipped, as asciinema's player skips them.
 */
export function parseCast(text: string): Cast {
  const lines = text.split("\n");
  const first = lines.shift() ?? "";
  let header: unknown;
  try {
    header = JSON.parse(first);
  } catch {
    throw new CastError("line 1: the header is not JSON");
  }
  const h = header as Partial<CastHeader> | null;
  if (typeof h !== "object" || h === null || h.version !== 2) throw new CastError("line 1: not an asciicast v2 header (version must be 2)");
  if (!isCount(h.width) || !isCount(h.height)) throw new CastError("line 1: the header needs a width and a height");
  const events: CastEvent[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line.trim() === "") continue;
    let event: unknown;
    try {
      event = JSON.parse(line);
    } catch {
      if (i === lines.length - 1) break;
      throw new CastError(`line ${i + 2}: not JSON`);
    }
    if (!Array.isArray(event) || event.length !== 3 || typeof event[0] !== "number" || typeof event[1] !== "string" || typeof event[2] !== "string") {
      throw new CastError(`line ${i + 2}: an event is [time, code, data]`);
    }
    if (!["o", "i", "r", "m"].includes(event[1])) continue;
    events.push(event as CastEvent);
  }
  return { header: h as CastHeader, events };
}

function isCount(n: unknown): n is number {
  return typeof n === "number" && Number.isInteger(n) && n > 0;
}
