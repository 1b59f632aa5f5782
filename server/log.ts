// The server's log: JSON lines (pino) for a log collector or a file, and, on
// a terminal, the same records made readable by pino-pretty (time, level in
// colour, message, then the fields). Writes are synchronous either way: the
// last lines before an exit, or a crash, are not lost.
import { pino, type Logger } from "pino";

export async function createLogger(level: string): Promise<Logger> {
  const options = { level, base: { pid: process.pid } };
  if (!process.stdout.isTTY) return pino(options, pino.destination({ dest: 1, sync: true }));
  // Loaded only for a terminal: a service's log pays nothing for it.
  const { default: pretty } = await import("pino-pretty");
  return pino(options, pretty({ destination: 1, sync: true, colorize: true, translateTime: "SYS:HH:MM:ss.l", ignore: "pid,hostname" }));
}
