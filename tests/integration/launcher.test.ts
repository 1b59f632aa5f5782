// The shim and the launcher on the real kernel: each isolation point of a
// container, checked from inside a real Alpine container, as root. The
// containers have no cgroups and no network (tests/fixtures/shim-container.ts)
// unless a test gives them a cgroup of its own.
import { existsSync } from "node:fs";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MASKED_PATHS, READONLY_PATHS } from "../../server/engine/process/mounts.ts";
import type { ShimConnection } from "../../server/engine/process/shim-connection.ts";
import { mountsUnder } from "../../server/engine/rootfs/mountinfo.ts";
import { listRootfsLoopDevices, rootfsPaths } from "../../server/engine/rootfs/rootfs.ts";
import { PATH_ENV, ShimTestbed, shimsUnder, UID_BASE, type RunOptions, type TestContainer } from "../fixtures/shim-container.ts";
import { shiftOwners, unpackShiftedAlpine } from "./shifted-alpine.ts";

let bed: ShimTestbed;
let alpine: string;
let cgroupDir: string | undefined;

beforeAll(async () => {
  bed = await ShimTestbed.create("pg-launcher-");
  alpine = path.join(bed.dir, "layers", "alpine");
  await unpackShiftedAlpine(alpine, UID_BASE);
});

afterAll(async () => {
  await bed.endAll();
  if (cgroupDir) await fs.rmdir(cgroupDir);
  expect(await shimsUnder(bed.dir)).toEqual([]);
  expect(await listRootfsLoopDevices(bed.dir)).toEqual([]);
  expect(await mountsUnder(bed.dir)).toEqual([]);
  await fs.rm(bed.dir, { recursive: true, force: true });
});

/** Runs a command in a fresh Alpine container (or one with the given layers) with pipes. */
function run(argv: string[], options: Partial<RunOptions> = {}) {
  return bed.run(argv, { layerDirs: [alpine], ...options });
}

/** Runs a shell script inside; fails the test on any error output or a non-zero exit. */
async function sh(script: string, options: Partial<RunOptions> = {}) {
  const r = await run(["sh", "-c", script], options);
  expect(r.stderr).toBe("");
  expect(r.exitCode).toBe(0);
  return r.stdout;
}

/** A layer stacked on Alpine, with these files (and symbolic links), owned by container root as the layer unpacker leaves it. */
async function layer(name: string, files: Record<string, string>, links: Record<string, string> = {}) {
  const dir = path.join(bed.dir, "layers", name);
  await fs.mkdir(dir, { recursive: true });
  for (const [file, content] of Object.entries(files)) {
    await fs.mkdir(path.dirname(path.join(dir, file)), { recursive: true });
    await fs.writeFile(path.join(dir, file), content, { mode: 0o755 });
  }
  for (const [link, target] of Object.entries(links)) {
    await fs.mkdir(path.dirname(path.join(dir, link)), { recursive: true });
    await fs.symlink(target, path.join(dir, link));
  }
  await shiftOwners(dir, UID_BASE);
  return dir;
}

/** What a terminal has printed so far, and a promise for the moment it shows some text. */
function terminal(container: TestContainer, connection: ShimConnection) {
  let text = "";
  connection.on("output", (data) => (text += data.toString("utf8")));
  return {
    get text() {
      return text;
    },
    shows(wanted: string): Promise<void> {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (!text.includes(wanted)) return;
          connection.off("output", check);
          resolve();
        };
        connection.on("output", check);
        // The shim sends everything the terminal held before the news of the exit.
        container.shim.exited.then(() => (text.includes(wanted) ? resolve() : reject(new Error(`the container exited without showing ${JSON.stringify(wanted)}; it showed ${JSON.stringify(text)}`))));
      });
    },
  };
}

describe("isolation, seen from inside", () => {
  it("has its own hostname", async () => {
    expect(await sh("hostname; cat /proc/sys/kernel/hostname")).toBe("pgtest\npgtest\n");
    expect(os.hostname()).not.toBe("pgtest");
  });

  it("runs the command as PID 1 and shows no host process", async () => {
    const out = await sh("ps -o pid,args; echo end");
    const rows = out.trim().split("\n").slice(1, -1).map((l) => l.trim());
    expect(rows).toHaveLength(2); // sh and ps, nothing else
    expect(rows[0]).toBe("1 sh -c ps -o pid,args; echo end");
    expect(rows[1]).toMatch(/^\d+ ps -o pid,args$/);
  });

  it("is root inside a user namespace, mapped to uid 100000 outside", async () => {
    let owner: number[] = [];
    const out = await sh("id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map; echo made > /root/by-root", {
      afterExit: async (c) => {
        const made = await fs.stat(path.join(c.upperDir, "root", "by-root"));
        owner = [made.uid, made.gid];
      },
    });
    const [uid, gid, uidMap, gidMap] = out.trim().split("\n");
    expect([uid, gid]).toEqual(["0", "0"]);
    expect(uidMap.trim().split(/\s+/)).toEqual(["0", "100000", "65536"]);
    expect(gidMap.trim().split(/\s+/)).toEqual(["0", "100000", "65536"]);
    expect(owner).toEqual([UID_BASE, UID_BASE]);
  });

  it("runs as a non-root image user with no capabilities left", async () => {
    const out = await sh("id -u; id -g; grep -E '^Cap(Eff|Bnd)' /proc/self/status", { user: { uid: 1000, gid: 1000 } });
    expect(out).toBe("1000\n1000\nCapEff:\t0000000000000000\nCapBnd:\t00000000a80425fb\n");
  });

  it("keeps only Docker's default capabilities, with no_new_privs set", async () => {
    const out = await sh("grep -E '^(Cap|NoNewPrivs)' /proc/self/status");
    expect(out).toBe(
      [
        "CapInh:\t0000000000000000",
        "CapPrm:\t00000000a80425fb",
        "CapEff:\t00000000a80425fb",
        "CapBnd:\t00000000a80425fb",
        "CapAmb:\t0000000000000000",
        "NoNewPrivs:\t1",
        "",
      ].join("\n"),
    );
    // Without CAP_SYS_ADMIN, container root cannot mount.
    const r = await run(["mount", "-t", "tmpfs", "tmpfs", "/mnt"]);
    expect(r.exitCode).not.toBe(0);
  });

  it("entered its root with pivot_root: the host's file system is gone, not just out of reach", async () => {
    const out = await sh("cat /proc/self/mountinfo");
    const lines = out.trim().split("\n").map((l) => l.split(" "));
    const mountPoints = lines.map((fields) => fields[4]);
    expect(mountPoints[0]).toBe("/"); // the overlay is the root mount, not a chroot inside the host's
    expect(mountPoints.filter((m) => m.includes(bed.dir))).toEqual([]);
    expect(out).not.toMatch(/ \/ \S+ - ext4 /); // no ext4 root: neither the host's nor the writable layer's
    // The device of the host's root file system is mounted nowhere in the container.
    const hostRoot = (await fs.readFile("/proc/self/mountinfo", "utf8")).split("\n").map((l) => l.split(" ")).find((fields) => fields[4] === "/")!;
    expect(lines.filter((fields) => fields[2] === hostRoot[2])).toEqual([]);
    expect(mountPoints).toEqual(expect.arrayContaining(["/proc", "/sys", "/dev", "/dev/pts", "/dev/shm"]));
  });

  it("has read-only /sys and the minimal /dev", async () => {
    const r = await run(["sh", "-c", "touch /sys/x; awk '$5 == \"/sys\" { print $6 }' /proc/self/mountinfo"]);
    expect(r.stderr).toMatch(/Read-only file system/);
    expect(r.stdout).toMatch(/^ro,/);
    expect((await sh("ls -A /dev")).trim().split("\n")).toEqual([
      "fd", "full", "null", "ptmx", "pts", "random", "shm", "stderr", "stdin", "stdout", "tty", "urandom", "zero",
    ]);
    const dev = await sh("echo hi > /dev/null; head -c 4 /dev/zero | wc -c; head -c 4 /dev/urandom | wc -c; ls /dev/pts");
    expect(dev).toBe("4\n4\nptmx\n"); // a devpts of its own: no host terminal listed
  });

  it("masks the /proc and /sys paths runc masks, and keeps kernel tunables read-only", async () => {
    const present = MASKED_PATHS.filter((p) => existsSync(p));
    expect(present.length).toBeGreaterThan(2); // /proc/keys, /proc/timer_list, /sys/firmware … exist here
    const out = await sh(present.map((p) => `echo "${p} $(cat ${p} 2>/dev/null | wc -c) $(ls -A ${p} 2>/dev/null | wc -l)"`).join("; "));
    for (const line of out.trim().split("\n")) expect(line).toMatch(/ 0 [01]$/); // empty file or empty directory
    expect(await fs.readFile("/proc/keys", "utf8").catch(() => "x")).not.toBe(""); // the host's is not empty
    const r = await run(["sh", "-c", "echo 1 > /proc/sys/vm/drop_caches; echo h > /proc/sysrq-trigger; awk '$5 ~ /^\\/proc\\// { print $5, substr($6, 1, 2) }' /proc/self/mountinfo"]);
    expect(r.stderr.trim().split("\n")).toHaveLength(2); // both writes refused (this kernel may have no sysrq-trigger)
    expect(r.stderr).toMatch(/drop_caches: Read-only file system/);
    const modes = Object.fromEntries(r.stdout.trim().split("\n").map((l) => l.split(" ")));
    const readonly = READONLY_PATHS.filter((p) => existsSync(p));
    expect(readonly).toContain("/proc/sys");
    for (const p of readonly) expect(modes[p]).toBe("ro");
  });

  it("passes no file descriptor of the shim or the server in", async () => {
    expect(await sh("ls /proc/self/fd")).toBe("0\n1\n2\n3\n"); // 3 is ls's own directory handle
  });

  it("has its own network and IPC namespaces", async () => {
    const out = await sh("ls /sys/class/net; for ns in net ipc cgroup; do readlink /proc/self/ns/$ns; done");
    const [ifaces, net, ipc, cgroup] = out.trim().split("\n");
    expect(ifaces).toBe("lo");
    expect(net).not.toBe(await fs.readlink("/proc/self/ns/net"));
    expect(ipc).not.toBe(await fs.readlink("/proc/self/ns/ipc"));
    expect(cgroup).not.toBe(await fs.readlink("/proc/self/ns/cgroup"));
  });

  it("passes the environment exactly: nothing of the host, the server or the shim", async () => {
    const r = await run(["env"], { env: [PATH_ENV, "GREETING=hello world", "X=$(reboot)"] });
    expect(r.stdout.trim().split("\n").sort()).toEqual(["GREETING=hello world", PATH_ENV, "X=$(reboot)"]);
  });

  it("starts in the working directory, and writes its own /etc files into its writable layer", async () => {
    const upper: Record<string, string | number> = {};
    const r = await run(["sh", "-c", "pwd; cat /etc/hosts /etc/hostname; echo 1.2.3.4 extra >> /etc/hosts"], {
      cwd: "/tmp",
      files: [
        { path: "/etc/hosts", content: "127.0.0.1 localhost\n10.9.0.2 pgtest\n" },
        { path: "/etc/hostname", content: "pgtest\n" },
      ],
      afterExit: async (c) => {
        upper.hosts = await fs.readFile(path.join(c.upperDir, "etc", "hosts"), "utf8");
        upper.hostname = await fs.readFile(path.join(c.upperDir, "etc", "hostname"), "utf8");
        // Written by the container's own root (host uid 100000), not by host root.
        upper.owner = (await fs.stat(path.join(c.upperDir, "etc", "hosts"))).uid;
      },
    });
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("/tmp\n127.0.0.1 localhost\n10.9.0.2 pgtest\npgtest\n");
    // The container's copy, with its own change, is in its writable layer; the image's is untouched.
    expect(upper).toEqual({ hosts: "127.0.0.1 localhost\n10.9.0.2 pgtest\n1.2.3.4 extra\n", hostname: "pgtest\n", owner: UID_BASE });
    expect(await fs.readFile(path.join(alpine, "etc", "hosts"), "utf8")).not.toContain("pgtest");
  });

  it("replaces a symbolic link the image put at an /etc file, rather than writing through it", async () => {
    // The image's /etc/resolv.conf points at `victim`, a path that names a
    // file of the image and, on the host, a file of the test's own: written
    // through the link, one of them would change.
    const victim = path.join(bed.dir, "victim");
    await fs.writeFile(victim, "untouched\n");
    const linked = await layer("resolv-link", { [victim]: "untouched\n" }, { "etc/resolv.conf": victim });
    let atGate = "";
    const upper: Record<string, unknown> = {};
    const r = await run(["sh", "-c", `cat /etc/resolv.conf ${victim}`], {
      layerDirs: [alpine, linked],
      files: [{ path: "/etc/resolv.conf", content: "nameserver 192.0.2.53\n" }],
      atGate: async (c) => {
        atGate = await fs.readlink(c.seenByShim(path.join(rootfsPaths(c.containerDir).merged, "etc", "resolv.conf")));
      },
      afterExit: async (c) => {
        const written = await fs.lstat(path.join(c.upperDir, "etc", "resolv.conf"));
        upper.regularFile = written.isFile();
        upper.content = await fs.readFile(path.join(c.upperDir, "etc", "resolv.conf"), "utf8");
        upper.victimCopied = existsSync(path.join(c.upperDir, victim));
      },
    });
    expect(atGate).toBe(victim); // the image's link was there until the gate
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("nameserver 192.0.2.53\nuntouched\n");
    expect(upper).toEqual({ regularFile: true, content: "nameserver 192.0.2.53\n", victimCopied: false });
    expect(await fs.readFile(victim, "utf8")).toBe("untouched\n");
    expect(await fs.readlink(path.join(linked, "etc", "resolv.conf"))).toBe(victim);
  });
});

describe("limits and lifecycle", () => {
  it("fails a write past the writable layer's size cap with ENOSPC", async () => {
    const r = await run(["sh", "-c", "dd if=/dev/zero of=/big bs=1M count=32"], { sizeBytes: 8 * 1024 ** 2 });
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toContain("No space left on device");
  });

  it("passes the exit status through; a missing command or working directory fails the gate", async () => {
    expect((await run(["sh", "-c", "exit 7"])).exitCode).toBe(7);

    const missing = await bed.launch({ layerDirs: [alpine] });
    await expect(missing.start({ argv: ["no-such-command"] })).rejects.toThrow('exec: "no-such-command": executable file not found in $PATH');
    expect(await missing.shim.exited).toBe(127);
    await missing.end();

    const badDir = await bed.launch({ layerDirs: [alpine] });
    await expect(badDir.start({ argv: ["true"], cwd: "/no/such/dir" })).rejects.toThrow("working directory /no/such/dir");
    expect(await badDir.shim.exited).toBe(125);
    await badDir.end();
  });

  it("kill() ends a container whose PID 1 ignores SIGTERM", async () => {
    const c = await bed.launch({ layerDirs: [alpine] });
    await c.start({ argv: ["sleep", "600"] });
    // PID 1 of a PID namespace gets no signal it has no handler for: SIGTERM
    // is dropped, and the SIGKILL sent after it is what ends the container
    // (128 + 9; had SIGTERM ended it, the status would be 128 + 15).
    c.shim.kill("SIGTERM");
    c.shim.kill();
    expect(await c.shim.exited).toBe(137);
    await c.end();
  });

  it("enters its cgroup before any container code runs, and sees it read-only", async () => {
    // A group of the test's own, outside playground/ (which `playground rm` in other tests sweeps). cgroup v1, as this host has.
    cgroupDir = `/sys/fs/cgroup/pids/pg-launcher-test-${process.pid}`;
    await fs.mkdir(cgroupDir, { recursive: true });
    await fs.writeFile(path.join(cgroupDir, "pids.max"), "77");
    let atGate: number[] = [];
    let pid = 0;
    const r = await run(["sh", "-c", "cat /proc/self/cgroup | grep pids; cat /sys/fs/cgroup/pids/pids.max; echo 5 > /sys/fs/cgroup/pids/pids.max"], {
      cgroupProcsFiles: [path.join(cgroupDir, "cgroup.procs")],
      cgroupMounts: [{ source: cgroupDir, target: "/sys/fs/cgroup/pids" }],
      atGate: async (c) => {
        // At the gate, before the command runs, the process is already counted.
        pid = c.shim.pid;
        atGate = (await fs.readFile(path.join(cgroupDir!, "cgroup.procs"), "utf8")).trim().split("\n").map(Number);
      },
    });
    expect(atGate).toContain(pid);
    expect(r.stdout).toMatch(/^\d+:pids:\/\n77\n$/); // its cgroup is the root of its cgroup namespace
    expect(r.stderr).toMatch(/Read-only file system/);
    expect(await fs.readFile(path.join(cgroupDir, "pids.max"), "utf8")).toBe("77\n");
  });

  it("gives a real terminal of its own devpts in tty mode, held by the shim, and follows resizes", async () => {
    const c = await bed.launch({ layerDirs: [alpine], tty: { cols: 100, rows: 30 } });
    const screen = terminal(c, c.shim.connection);
    await c.start({ argv: ["sh", "-c", "[ -t 0 ] && echo tty; tty; stty size; read x; stty size"], env: [PATH_ENV, "TERM=xterm"] });
    await screen.shows("30 100");
    c.shim.connection.resize(120, 40);
    c.shim.connection.input("\r");
    await screen.shows("40 120");
    expect(await c.shim.exited).toBe(0);
    expect(screen.text).toMatch(/tty\r\n\/dev\/pts\/0\r\n30 100\r\n/);
    await c.end();
  });

  it("shows how the container was built, step by step, with the time of each", async () => {
    const r = await run(["true"]);
    const steps = r.container.shim.steps;
    const commands = steps.map((s) => s.command).join("\n");
    for (const expected of ["unshare --mount --propagation private", "uid_map", "mount -t proc", "pivot_root", "prlimit", "setpriv"]) {
      expect(commands).toContain(expected);
    }
    for (const s of steps) {
      expect(s.title.length).toBeGreaterThan(5);
      expect({ step: s.title, ms: typeof s.ms === "number" && s.ms >= 0 }).toEqual({ step: s.title, ms: true });
    }
  });

  it("runs no program of the image while it still holds the setup's privileges", async () => {
    // A layer whose usual tools (the programs a setup done by hand would run)
    // leave a mark when run. The mark's path names a directory both in the
    // image and on the host, so a trap run on either side would be seen.
    const marks = path.join(bed.dir, "trap-marks");
    await fs.mkdir(marks);
    const trap = `#!/bin/sh\necho "$0 $*" >> ${marks}/ran\n`;
    const tools = ["mount", "umount", "hostname", "mkdir", "ln", "touch", "chown", "cp", "mknod", "pivot_root", "unshare", "nsenter", "setpriv", "prlimit", "env"];
    const files: Record<string, string> = { [path.join(marks, ".keep")]: "" };
    for (const dir of ["/bin", "/sbin", "/usr/bin", "/usr/sbin"]) for (const tool of tools) files[path.join(dir, tool)] = trap;
    const trapped = await layer("trap", files);

    const marksInside = (c: TestContainer) => fs.readFile(path.join(c.upperDir, marks, "ran"), "utf8").catch((e: NodeJS.ErrnoException) => e.code);
    let mark: string | undefined;
    const r = await run(["true"], { layerDirs: [alpine, trapped], afterExit: async (c) => void (mark = await marksInside(c)) });
    expect(r.exitCode).toBe(0);
    expect(mark).toBe("ENOENT");
    expect(existsSync(path.join(marks, "ran"))).toBe(false);

    // The trap is armed: the image's mount, run as a command, leaves its mark.
    const armed = await run(["mount"], { layerDirs: [alpine, trapped], afterExit: async (c) => void (mark = await marksInside(c)) });
    expect(armed.exitCode).toBe(0);
    expect(mark).toMatch(/\/mount \n$/);
  });
});
