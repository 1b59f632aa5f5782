// A container's limits, declared once: the settings (PLAYGROUND_MEMORY, …),
// the CLI's flags (--memory, …) and the engine all read them through these
// schemas, so "256m" means the same everywhere and a limit that cannot work
// (no memory at all, no process at all) is refused the same way everywhere.
import { z } from "zod";
import { firstIssue } from "./validation.ts";

/** "256m" → 268435456. Units are binary (k = 1024), as docker's --memory. */
export function parseByteSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)([kmg]?)b?$/i.exec(text.trim());
  if (!m) throw new Error(`invalid size "${text}": expected a number with an optional k, m or g`);
  const scale = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2].toLowerCase() as "" | "k" | "m" | "g"];
  return Math.round(Number(m[1]) * scale);
}

const MiB = 1024 ** 2;

/** A size written as text ("256m", "1g"), at least `min` bytes. */
export function sizeText(min: number, what: string) {
  return z
    .string()
    .regex(/^\d+(\.\d+)?[kmgKMG]?[bB]?$/, "expected a size such as 256m or 1g")
    .transform(parseByteSize)
    .pipe(z.number().int().min(min, `${what} must be at least ${min / MiB}m`));
}

/** Docker's floor: less memory cannot even start a shell. */
export const MIN_MEMORY_BYTES = 6 * MiB;
/** The writable layer is an ext4 file system: smaller ones cannot be made. */
export const MIN_WRITABLE_LAYER_BYTES = 2 * MiB;

export const Memory = sizeText(MIN_MEMORY_BYTES, "memory");
export const WritableLayerSize = sizeText(MIN_WRITABLE_LAYER_BYTES, "the writable layer");
export const Cpus = z.coerce.number({ message: "expected a number of CPUs such as 0.5" }).positive("CPUs must be more than 0").max(1024);
export const PidsLimit = z.coerce.number({ message: "expected a whole number" }).int("expected a whole number").min(1, "at least 1 process").max(4_194_304);
/** Bytes per second (or I/O operations per second) on the writable layer; 0 is unlimited. */
export const IoRate = z.coerce.number({ message: "expected a whole number" }).int("expected a whole number").min(0);

/** The limits each container is held to. */
export interface ContainerLimits {
  memoryBytes: number;
  /** Share of one CPU: 0.5 is half a core, 2 is two cores. */
  cpus: number;
  pidsLimit: number;
  /** Block I/O on the writable layer: bytes and operations per second, 0 for no limit. */
  ioBps: number;
  ioIops: number;
}

/** Parses one value with a schema, or throws `what: reason`. */
export function parseWith<T>(schema: z.ZodType<T, unknown>, value: unknown, what: string): T {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new Error(`${what}: ${firstIssue(parsed.error)}`);
  return parsed.data;
}
