// Entering a running container from the host (engine/process/enter.ts): what
// lesson checks and file transfers stand on. A student's container is driven
// through its shell's stdin, as the student would type; the host enters it
// and must see the container's truth, whatever the student did to fake it:
//   - its hostname, processes and files, with its root as "/";
//   - a fake `ps` in PATH or at /bin/ps is never run;
//   - no host file is reachable, not even through a symbolic link;
//   - it runs as the host uid container root maps to, in the container's
//     cgroups, non-dumpable: container root can neither read its memory nor
//     ptrace it (while it can do both to a process of its own);
//   - a time limit ends it and all it started; a gone container is refused.
import fs from "node:fs";
import fsp from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type { Engine, RunningContainer } from "../../server/engine/engine.ts";
import { EnterError } from "../../server/engine/process/enter.ts";
import { makePlayground, waitFor, type Playground } from "../fixtures/containers.ts";

let pg: Playground;
let engine: Engine;
let container: RunningContainer;
let shell: ContainerShell;
/** A directory of the host's, with a file no container may see. */
let hostDir: string;

const UID_BASE = 100000;

beforeAll(async () => {
  pg = await makePlayground(inject("registry"));
  engine = await pg.engine();
  hostDir = await fsp.mkdtemp(path.join(os.tmpdir(), "pg-enter-host-"));
  await fsp.writeFile(path.join(hostDir, "secret"), "the host's secret\n");
  container = await engine.run({ image: pg.images.tools, hostname: "enter-lab", command: ["sh"], tty: null, stdio: { mode: "pipe", stdin: true }, autoRemove: true });
  shell = new ContainerShell(container);
});

afterAll(async () => {
  await container?.stop();
  await fsp.rm(hostDir, { recursive: true, force: true });
  await pg?.teardown();
});

/** The container's own shell (its first process, container root), typed into through its stdin. */
class ContainerShell {
  private output = "";
  private count = 0;

  constructor(private readonly c: RunningContainer) {
    c.stdio!.stdout.setEncoding("utf8").on("data", (d: string) => (this.output += d));
    c.stdio!.stderr.setEncoding("utf8").on("data", (d: string) => (this.output += d));
  }

  /** Runs a line in the container's shell; resolves with what it printed. */
  async run(line: string): Promise<string> {
    const marker = `__done_${++this.count}__`;
    const from = this.output.length;
    this.c.stdio!.stdin!.write(`${line}\necho ${marker}\n`);
    await waitFor(`the container's shell to run: ${line}`, async () => (this.output.includes(marker, from) ? true : undefined), 20_000);
    return this.output.slice(from, this.output.indexOf(marker, from));
  }
}

/** The host's kernel.yama.ptrace_scope (0 without Yama). */
function yamaScope(): number {
  try {
    return Number(fs.readFileSync("/proc/sys/kernel/yama/ptrace_scope", "utf8"));
  } catch {
    return 0;
  }
}

/** Host pids whose command line is exactly `argv`. */
function hostPidsRunning(argv: string[]): number[] {
  const wanted = argv.join("\0") + "\0";
  return fs
    .readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        return fs.readFileSync(`/proc/${d}/cmdline`, "utf8") === wanted;
      } catch {
        return false;
      }
    })
    .map(Number);
}

describe("what a program entered into the container sees", () => {
  it("sees the container's hostname, its processes and its files", async () => {
    await shell.run("sleep 1234 & echo note > /root/note.txt");
    const hostname = await engine.enter(container.id, { argv: ["hostname"], timeoutMs: 10_000 });
    expect(hostname).toMatchObject({ code: 0, stdout: "enter-lab\n", timedOut: false });
    const ps = await engine.enter(container.id, { argv: ["ps", "-o", "pid,args"], timeoutMs: 10_000 });
    expect(ps.code).toBe(0);
    expect(ps.stdout).toMatch(/^\s*1 sh$/m);
    expect(ps.stdout).toMatch(/sleep 1234/);
    const note = await engine.enter(container.id, { argv: ["cat", "/root/note.txt"], timeoutMs: 10_000 });
    expect(note.stdout).toBe("note\n");
    // Its network namespace: the container's address, not the host's.
    const addresses = await engine.enter(container.id, { argv: ["ip", "-4", "-o", "addr"], timeoutMs: 10_000 });
    expect(addresses.stdout).toContain(container.ip);
  });

  it("lists the ports the container listens on, read from its network namespace", async () => {
    await shell.run("httpd -p 8080 -h /tmp; httpd -p 127.0.0.1:8081 -h /tmp");
    const ports = await waitFor("both servers listening", async () => {
      const found = await engine.listeningPorts(container.id);
      return found.some((p) => p.port === 8081) && found.some((p) => p.port === 8080) ? found : undefined;
    });
    expect(ports.find((p) => p.port === 8080)).toMatchObject({ reachable: true });
    expect(ports.find((p) => p.port === 8081)).toEqual({ port: 8081, addresses: ["127.0.0.1"], reachable: false });
    await shell.run("killall httpd");
  });

  it("runs busybox's own ps, not a fake earlier in PATH nor one at /bin/ps", async () => {
    await shell.run(
      "printf '#!/bin/sh\\necho FAKE-PS\\n' > /usr/local/bin/ps && chmod +x /usr/local/bin/ps && rm /bin/ps && cp /usr/local/bin/ps /bin/ps && chmod +x /bin/ps",
    );
    // The container's programs are now fakes (its busybox shell still prefers its own applet for a bare "ps").
    expect(await shell.run("/usr/local/bin/ps; /bin/ps")).toBe("FAKE-PS\nFAKE-PS\n");
    for (const argv of [["ps"], ["sh", "-c", "ps"], ["sh", "-c", "PATH=/usr/local/bin:/bin; ps"]]) {
      const r = await engine.enter(container.id, { argv, timeoutMs: 10_000, env: ["PATH=/usr/local/bin:/bin"] });
      expect({ argv, out: r.stdout }).not.toMatchObject({ out: expect.stringContaining("FAKE-PS") });
      expect(r.stdout).toMatch(/sleep 1234/);
    }
  });

  it("cannot reach the host's files, not even through a symbolic link the student made", async () => {
    const secret = path.join(hostDir, "secret");
    await shell.run(`echo container-hostname-file > /etc/hostname; ln -s ${secret} /root/to-secret; ln -s /etc/hostname /root/to-hostname`);
    const direct = await engine.enter(container.id, { argv: ["cat", secret], timeoutMs: 10_000 });
    expect(direct.code).not.toBe(0);
    expect(direct.stderr).toMatch(/No such file/);
    const throughLink = await engine.enter(container.id, { argv: ["cat", "/root/to-secret"], timeoutMs: 10_000 });
    expect(throughLink.code).not.toBe(0);
    expect(throughLink.stdout).not.toContain("secret");
    // A link to a path both have resolves to the container's file.
    const hostname = await engine.enter(container.id, { argv: ["cat", "/root/to-hostname"], timeoutMs: 10_000 });
    expect(hostname.stdout).toBe("container-hostname-file\n");
    expect(hostname.stdout).not.toBe(fs.readFileSync("/etc/hostname", "utf8"));
  });

  it("starts in the shell's working directory when asked, else at the root", async () => {
    await shell.run("mkdir -p /srv/work && cd /srv/work");
    expect((await engine.enter(container.id, { argv: ["pwd"], cwd: "shell", timeoutMs: 10_000 })).stdout).toBe("/srv/work\n");
    expect((await engine.enter(container.id, { argv: ["pwd"], timeoutMs: 10_000 })).stdout).toBe("/\n");
    await shell.run("cd /");
  });

  it("takes its input on stdin and returns the program's exit status", async () => {
    const r = await engine.enter(container.id, { argv: ["sh", "-c", "cat > /tmp/in.txt; wc -c < /tmp/in.txt; exit 3"], input: "twelve bytes", timeoutMs: 10_000 });
    expect(r).toMatchObject({ code: 3, stdout: "12\n" });
    expect(await shell.run("cat /tmp/in.txt; ls -ln /tmp/in.txt | awk '{print $3}'")).toBe("twelve bytes0\n");
  });
});

describe("who it runs as, and what the student can do to it", () => {
  it("runs as the host uid container root maps to, in the container's cgroups and PID namespace, outside its user namespace, non-dumpable", async () => {
    const entered = await engine.spawnIn(container.id, { argv: ["sleep", "4711"], timeoutMs: 30_000 });
    try {
      const [pid] = await waitFor("the entered sleep on the host", async () => {
        const pids = hostPidsRunning(["sleep", "4711"]);
        return pids.length ? pids : undefined;
      });
      const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
      expect(status).toMatch(new RegExp(`^Uid:\\s+${UID_BASE}\\s+${UID_BASE}\\s+${UID_BASE}\\s+${UID_BASE}$`, "m"));
      expect(status).toMatch(new RegExp(`^Gid:\\s+${UID_BASE}\\s+${UID_BASE}\\s+${UID_BASE}\\s+${UID_BASE}$`, "m"));
      expect(status).toMatch(/^Groups:\s*$/m);
      expect(status).toMatch(/^CapEff:\s+0+$/m);
      expect(status).toMatch(/^CapPrm:\s+0+$/m);
      expect(status).toMatch(/^NoNewPrivs:\s+1$/m);
      expect(status).toMatch(/^Seccomp:\s+2$/m);
      const ns = (p: number, name: string) => fs.readlinkSync(`/proc/${p}/ns/${name}`);
      for (const name of ["mnt", "pid", "net", "uts", "ipc", "cgroup"]) expect({ name, ns: ns(pid, name) }).toEqual({ name, ns: ns(container.pid, name) });
      expect(ns(pid, "user")).toBe(fs.readlinkSync("/proc/self/ns/user"));
      expect(fs.readFileSync(`/proc/${pid}/cgroup`, "utf8")).toContain(container.id);
      // The kernel gives a non-dumpable process's /proc files to root, not to its own uid.
      expect(fs.statSync(`/proc/${pid}/mem`).uid).toBe(0);
    } finally {
      entered.kill();
      await entered.exited;
    }
  });

  it("cannot be read or ptraced by container root, who can do both to a process of its own", async () => {
    const entered = await engine.spawnIn(container.id, { argv: ["sleep", "4712"], timeoutMs: 30_000 });
    try {
      const [pid] = await waitFor("the entered sleep on the host", async () => {
        const pids = hostPidsRunning(["sleep", "4712"]);
        return pids.length ? pids : undefined;
      });
      // Its pid as the container numbers it: the last of NSpid.
      const inside = fs.readFileSync(`/proc/${pid}/status`, "utf8").match(/^NSpid:.*\s(\d+)$/m)![1];
      const peeked = await shell.run(`peek ${inside}`);
      expect(peeked).toMatch(/^maps [1-9]\d*$/m);
      expect(peeked).toMatch(/^mem [1-9]\d*$/m);
      expect(peeked).toMatch(/^environ [1-9]\d*$/m);
      expect(peeked).toMatch(/^attach [1-9]\d*$/m);
      // The same tries against the student's own sleep work: the refusal is about the entered program.
      const own = await shell.run("sleep 4713 & peek $!; kill $!");
      expect(own).toMatch(/^maps 0\nmem 0\nenviron 0\n/m);
      // (Yama, where the host has it on, lets a process attach only to its descendants.)
      if (yamaScope() === 0) expect(own).toMatch(/^attach 0$/m);
    } finally {
      entered.kill();
      await entered.exited;
    }
  });
});

describe("a lesson check's view of the container's processes (inspectProcesses)", () => {
  it("reads another process's namespaces and root only when asked, with CAP_SYS_PTRACE alone, and container root still cannot peek at it", async () => {
    const read = ["sh", "-c", "readlink /proc/1/ns/net && readlink /proc/1/root || echo refused"];
    const plain = await engine.enter(container.id, { argv: read, timeoutMs: 10_000 });
    expect(plain.stdout).toMatch(/refused/);
    const inspecting = await engine.enter(container.id, { argv: read, timeoutMs: 10_000, inspectProcesses: true });
    expect(inspecting.stdout.split("\n")[0]).toBe(fs.readlinkSync(`/proc/${container.pid}/ns/net`));
    expect(inspecting.stdout.split("\n")[1]).toBe("/");

    const entered = await engine.spawnIn(container.id, { argv: ["sleep", "4718"], timeoutMs: 30_000, inspectProcesses: true });
    try {
      const [pid] = await waitFor("the entered sleep on the host", async () => {
        const pids = hostPidsRunning(["sleep", "4718"]);
        return pids.length ? pids : undefined;
      });
      const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
      // CAP_SYS_PTRACE (bit 19) and nothing else, in the host's user namespace.
      expect(status).toMatch(/^CapEff:\s+0*80000$/m);
      expect(status).toMatch(/^CapPrm:\s+0*80000$/m);
      expect(status).toMatch(/^NoNewPrivs:\s+1$/m);
      const inside = status.match(/^NSpid:.*\s(\d+)$/m)![1];
      const peeked = await shell.run(`peek ${inside}`);
      expect(peeked).toMatch(/^mem [1-9]\d*$/m);
      expect(peeked).toMatch(/^attach [1-9]\d*$/m);
    } finally {
      entered.kill();
      await entered.exited;
    }
  });
});

describe("limits and failures", () => {
  it("ends the program and everything it started at its time limit", async () => {
    const r = await engine.enter(container.id, { argv: ["sh", "-c", "sleep 4714 & sleep 4715; echo never"], timeoutMs: 500 });
    expect(r.timedOut).toBe(true);
    expect(r.code).toBeGreaterThan(128);
    expect(r.stdout).toBe("");
    await waitFor("nothing entered left running", async () => (hostPidsRunning(["sleep", "4714"]).length + hostPidsRunning(["sleep", "4715"]).length === 0 ? true : undefined), 5000);
  });

  it("holds the files it writes to the size limit it is given", async () => {
    const r = await engine.enter(container.id, { argv: ["sh", "-c", "head -c 5000 /dev/zero > /tmp/capped; echo $?; wc -c < /tmp/capped"], maxFileBytes: 1000, timeoutMs: 10_000 });
    const [status, size] = r.stdout.trim().split("\n").map(Number);
    expect(status).not.toBe(0);
    expect(size).toBe(1000);
  });

  it("ends what the program left behind when it exits", async () => {
    const r = await engine.enter(container.id, { argv: ["sh", "-c", "sleep 4716 >/dev/null 2>&1 & echo started"], timeoutMs: 10_000 });
    expect(r).toMatchObject({ code: 0, stdout: "started\n" });
    await waitFor("the background sleep gone", async () => (hostPidsRunning(["sleep", "4716"]).length === 0 ? true : undefined), 5000);
  });

  it("refuses a container that is not running", async () => {
    const short = await engine.run({ image: pg.images.tools, command: ["true"], tty: null, autoRemove: false });
    await short.exited;
    try {
      await expect(engine.enter(short.id, { argv: ["true"], timeoutMs: 5000 })).rejects.toThrow(/not running/);
    } finally {
      await engine.remove(short.id);
    }
  });

  it("refuses a pid that is not the container's", async () => {
    const target = await engine.enterTarget(container.id);
    const { enterContainer } = await import("../../server/engine/process/enter.ts");
    const { RealHost } = await import("../../server/engine/host.ts");
    const wrong = { ...target, pid: process.pid };
    await expect(enterContainer(new RealHost(), wrong, { argv: ["true"], timeoutMs: 5000 })).rejects.toThrow(EnterError);
    await expect(enterContainer(new RealHost(), wrong, { argv: ["true"], timeoutMs: 5000 })).rejects.toThrow(/is not container/);
  });
});
