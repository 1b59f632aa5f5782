// The server's log: readable lines on a terminal, JSON lines otherwise (a
// service's journal, a file, a log collector, the tests' own reading of it).
import { execFileSync } from "node:child_process";
import path from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = path.resolve(import.meta.dirname, "../..");
const LOG_A_LINE = `import("./server/log.ts").then(async (m) => (await m.createLogger("info")).info({ session: "abc123" }, "session running"))`;

function logged(onTerminal: boolean): string {
  const node = [process.execPath, "--import", "tsx", "-e", LOG_A_LINE];
  // util-linux's script gives the program a terminal of its own.
  const argv = onTerminal ? ["script", "-qec", node.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(" "), "/dev/null"] : node;
  return execFileSync(argv[0], argv.slice(1), { cwd: ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
}

describe("the server's log", () => {
  it("is one JSON object a line when not written to a terminal", () => {
    const lines = logged(false).trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0])).toMatchObject({ level: 30, msg: "session running", session: "abc123", pid: expect.any(Number) });
  });

  it("is readable on a terminal: time, level, message, then the fields", () => {
    const text = logged(true).replace(/\x1b\[[0-9;]*m/g, "");
    expect(text).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: session running\r?\n\s+session: "abc123"/);
    expect(text).not.toMatch(/[{]"level"/);
  });
});
