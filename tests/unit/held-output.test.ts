// Output a container prints before anyone listens must not be lost: a short
// command's whole output, a shell's first prompt.
import { spawn } from "node:child_process";
import { EventEmitter } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import type { IPty } from "node-pty";
import { describe, expect, it } from "vitest";
import { holdPipeOutput, holdPtyOutput } from "../../server/engine/process/held-output.ts";

describe("holdPipeOutput", () => {
  it("keeps the output of a child that exited before anyone read it", async () => {
    const child = spawn("sh", ["-c", "echo out; echo err >&2"], { stdio: ["pipe", "pipe", "pipe"] });
    holdPipeOutput(child);
    await new Promise((resolve) => child.once("exit", resolve));
    await sleep(100); // long after node would have discarded unread output
    let out = "";
    let err = "";
    child.stdout!.on("data", (d) => (out += d));
    child.stderr!.on("data", (d) => (err += d));
    await new Promise((resolve) => child.stdout!.once("end", resolve));
    expect(out).toBe("out\n");
    expect(err).toBe("err\n");
  });
});

/** A terminal that prints when told to, with node-pty's onData shape. */
function fakePty() {
  const events = new EventEmitter();
  const pty = {
    onData: (listener: (d: string) => void) => {
      events.on("data", listener);
      return { dispose: () => events.off("data", listener) };
    },
    pid: 42,
    resize(cols: number, rows: number) {
      this.size = [cols, rows];
    },
    size: [0, 0],
  };
  return { pty: pty as unknown as IPty & { size: number[] }, print: (d: string) => events.emit("data", d) };
}

describe("holdPtyOutput", () => {
  it("gives the first listener what was printed before it, then everything live", () => {
    const { pty, print } = fakePty();
    const held = holdPtyOutput(pty);
    print("/ # ");
    const first: string[] = [];
    held.onData((d) => first.push(d));
    print("ls\r\n");
    const second: string[] = [];
    const sub = held.onData((d) => second.push(d));
    print("bin\r\n");
    sub.dispose();
    print("etc\r\n");
    expect(first.join("")).toBe("/ # ls\r\nbin\r\netc\r\n");
    expect(second.join("")).toBe("bin\r\n");
  });

  it("is otherwise the same terminal", () => {
    const { pty } = fakePty();
    const held = holdPtyOutput(pty) as IPty & { size: number[] };
    held.resize(120, 40);
    expect(pty.size).toEqual([120, 40]);
    expect(held.pid).toBe(42);
  });
});
