// The launcher's plans, without root: the capability set, the mount steps and
// the command line of the container's process.
import { describe, expect, it } from "vitest";
import { boundingSetArg, capabilityMask } from "../../server/engine/process/capabilities.ts";
import { launchChain, type LaunchSpec } from "../../server/engine/process/launcher.ts";
import { filesystemSteps, pivotRootCommand, type PathKind } from "../../server/engine/process/mounts.ts";

const spec: LaunchSpec = {
  id: "abc",
  rootfs: "/data/containers/abc/merged",
  hostname: "abc",
  argv: ["sh", "-c", "echo $HOME; rm -rf /"],
  env: ["PATH=/bin", "X=$(id)"],
  cwd: "/work dir",
  user: { uid: 1000, gid: 1000 },
  uidBase: 100000,
  uidCount: 65536,
  cgroupProcsFiles: ["/sys/fs/cgroup/memory/playground/abc/cgroup.procs"],
  cgroupMounts: [{ source: "/sys/fs/cgroup/memory/playground/abc", target: "/sys/fs/cgroup/memory" }],
  files: [],
  tty: null,
};

describe("capabilities", () => {
  it("is Docker's default set, as /proc/PID/status prints it", () => {
    expect(capabilityMask()).toBe("00000000a80425fb");
    expect(boundingSetArg()).toMatch(/^-all,\+chown,\+dac_override,/);
    expect(boundingSetArg()).not.toContain("sys_admin");
  });
});

describe("filesystemSteps", () => {
  const kinds: Record<string, PathKind> = { "/proc/keys": "file", "/proc/acpi": "dir", "/proc/sys": "dir" };
  const steps = filesystemSteps(
    { root: "/r", hostname: "abc", cgroupMounts: spec.cgroupMounts, files: [{ source: "/data/run/0-hosts", target: "/etc/hosts" }] },
    (p) => kinds[p] ?? null,
  );
  const script = steps.map((s) => s.command).join("\n");

  it("masks files with /dev/null and directories with an empty read-only tmpfs, only where they exist", () => {
    expect(script).toContain("mount --bind /dev/null /r/proc/keys");
    expect(script).toContain("mount -t tmpfs -o ro,nosuid,nodev,noexec tmpfs /r/proc/acpi");
    expect(script).toContain("mount --bind -o ro /r/proc/sys /r/proc/sys");
    expect(script).not.toContain("/r/proc/kcore");
  });

  it("binds the root onto itself first and ends with pivot_root and the old root detached, by a program started before the swap", () => {
    expect(steps[1].command).toBe("mount --bind /r /r");
    const [cd, swap] = steps.at(-1)!.command.split("\n");
    expect(cd).toBe("cd /r");
    // One host program makes both calls: nothing is looked up in the image after the swap.
    expect(swap).toBe(pivotRootCommand("x64"));
    expect(swap).toMatch(/^\/usr\/bin\/perl -e '.*syscall\(155, \$here, \$here\).*syscall\(166, \$here, 2\)/);
  });

  it("shows the container's cgroup read-only", () => {
    expect(script).toContain("mount --bind -o ro /sys/fs/cgroup/memory/playground/abc /r/sys/fs/cgroup/memory");
    expect(script).toContain("mount -o remount,bind,ro,nosuid,nodev,noexec /r/sys/fs/cgroup");
  });

  it("refuses container files outside one directory below /", () => {
    for (const target of ["/hosts", "/etc/../hosts", "/a/b/c"]) {
      expect(() => filesystemSteps({ root: "/r", hostname: "a", cgroupMounts: [], files: [{ source: "/s", target }] }, () => null)).toThrow(/one directory below/);
    }
  });
});

describe("launchChain", () => {
  const { argv, steps } = launchChain(spec, "/proc/42/ns/user", "/data/containers/abc/run/gate", spec.env);

  it("joins the cgroups, enters the user namespace, creates the rest, drops privileges, then waits", () => {
    const order = ["/bin/bash", "/usr/bin/nsenter", "/usr/bin/unshare", "/usr/bin/setpriv", "/bin/sh"].map((tool) => argv.indexOf(tool));
    expect(order).toEqual([...order].sort((a, b) => a - b));
    expect(argv).toContain("--user=/proc/42/ns/user");
    expect(argv).toEqual(expect.arrayContaining(["--nnp", "--reuid=1000", "--regid=1000", "--clear-groups", "--kill-child"]));
    expect(steps.map((s) => s.command).join("\n")).toContain("echo $$ > /sys/fs/cgroup/memory/playground/abc/cgroup.procs");
  });

  it("passes the command, environment and directory as arguments, never inside a script", () => {
    const gateArgs = argv.slice(argv.lastIndexOf("pg-gate") + 1);
    expect(gateArgs).toEqual(["/data/containers/abc/run/gate", "/work dir", "2", "PATH=/bin", "X=$(id)", "sh", "-c", "echo $HOME; rm -rf /"]);
  });
});
