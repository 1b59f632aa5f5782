// docs/playground.service, the systemd unit the README tells operators to
// install: a restart must not take the students' shells with it, a crash is
// restarted, and every setting it sets is one the server knows and accepts.
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig, SETTING_NAMES } from "../../server/config.ts";

const ROOT = path.resolve(import.meta.dirname, "../..");
const UNIT = fs.readFileSync(path.join(ROOT, "docs", "playground.service"), "utf8");

/** KEY=VALUE entries of a section, in order (comments and blank lines skipped). */
function section(name: string): [string, string][] {
  const entries: [string, string][] = [];
  let current = "";
  for (const line of UNIT.split("\n").map((l) => l.trim())) {
    if (line === "" || line.startsWith("#")) continue;
    const header = /^\[(\w+)\]$/.exec(line);
    if (header) current = header[1];
    else if (current === name) entries.push([line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)]);
  }
  return entries;
}

describe("the systemd unit", () => {
  const service = section("Service");
  const value = (key: string) => service.filter(([k]) => k === key).map(([, v]) => v);

  it("stops only the server, so each container's shim and its shell survive a restart", () => {
    expect(value("KillMode")).toEqual(["process"]);
    expect(value("KillSignal")).toEqual(["SIGTERM"]);
  });

  it("restarts a server that failed, and runs the server itself as its main process", () => {
    expect(value("Restart")).toEqual(["on-failure"]);
    // start.sh ends with `exec node …`: the server, not a wrapper, gets the signal.
    expect(value("ExecStart")).toEqual(["/bin/bash scripts/start.sh"]);
    expect(fs.readFileSync(path.join(ROOT, "scripts", "start.sh"), "utf8")).toMatch(/^exec node bin\/playground\.mjs serve$/m);
  });

  it("sets only settings the server knows, with values it accepts", () => {
    const env = Object.fromEntries(value("Environment").map((e) => [e.slice(0, e.indexOf("=")), e.slice(e.indexOf("=") + 1)]));
    expect(Object.keys(env).length).toBeGreaterThanOrEqual(5);
    for (const name of Object.keys(env)) expect(SETTING_NAMES).toContain(name);
    const config = loadConfig(env as NodeJS.ProcessEnv);
    expect(config.web.port).toBe(Number(env.PLAYGROUND_PORT));
    expect(config.web.endOnStop).toBe(false);
  });
});
