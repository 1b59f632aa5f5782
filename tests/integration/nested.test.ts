// The nested profile: a student builds a container inside their container.
// Under `nested` root in the container may make a user namespace and every
// other kind inside it, mount /proc there, manage a cgroup subtree of its own
// (a limit it sets is enforced) and make veth pairs into namespaces it made;
// under `default` all of that is refused. What must still fail under nested:
// raising its own limits, seeing the host's cgroup tree or another
// container's, the host's files, the host's and other containers' network,
// the kernel's tunables. Each attack is harmless if it succeeded: values are
// written back unchanged, writes go to the container's own files.
import fs from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type { Engine, RunningContainer } from "../../server/engine/engine.ts";
import { makePlayground, type Playground } from "../fixtures/containers.ts";

let pg: Playground;
let engine: Engine;
let sibling: RunningContainer;
let marker: string;
const after: (() => Promise<void>)[] = [];

beforeAll(async () => {
  pg = await makePlayground(inject("registry"));
  engine = await pg.engine();
  await engine.pull(pg.images.alpine);
  // Another student's container, and a file of the host's.
  sibling = await engine.run({ image: pg.images.alpine, command: ["sleep", "600"], tty: null, stdio: { mode: "pipe", stdin: false }, autoRemove: true, daemon: true });
  marker = path.join(await fs.mkdtemp(path.join(os.tmpdir(), "pg-nested-")), "host-secret");
  await fs.writeFile(marker, "host only\n");
});
afterAll(async () => {
  for (const undo of after) await undo();
  await sibling?.stop();
  if (marker) await fs.rm(path.dirname(marker), { recursive: true, force: true });
  await pg?.teardown();
});

/** Runs a shell script in a new container of `profile`; its output (stdout and stderr) and exit code. */
async function inContainer(profile: "default" | "nested", script: string): Promise<{ code: number; output: string; id: string }> {
  const c = await engine.run({ image: pg.images.alpine, command: ["sh", "-c", script], tty: null, stdio: { mode: "pipe", stdin: false }, autoRemove: true, profile });
  let output = "";
  c.stdio!.stdout.setEncoding("utf8").on("data", (d: string) => (output += d));
  c.stdio!.stderr.setEncoding("utf8").on("data", (d: string) => (output += d));
  const end = await c.exited;
  return { code: end.exitCode, output, id: c.id };
}

describe("the nested profile", () => {
  it("is refused under the default profile: no user namespace, no mount, no delegated cgroup, no veth", async () => {
    const { output } = await inContainer(
      "default",
      [
        "unshare -Ur true; echo unshare=$?",
        "mount -t tmpfs none /mnt; echo mount=$?",
        "mkdir /sys/fs/cgroup/memory/box 2>/dev/null || mkdir /sys/fs/cgroup/box; echo cgroup=$?",
        "ip link add v0 type veth peer name v1; echo veth=$?",
      ].join("\n"),
    );
    for (const what of ["unshare", "mount", "cgroup", "veth"]) expect(output, what).toMatch(new RegExp(`^${what}=[1-9]`, "m"));
  });

  it("lets a student build a container by hand: five namespaces, /proc, a cgroup limit that holds, a veth pair into the new namespace", async () => {
    const { output, code } = await inContainer(
      "nested",
      [
        "set -e",
        // Namespaces: user (root inside, mapped to us), mount, PID (with its own /proc), UTS, network, IPC.
        "unshare --user --map-root-user --mount --pid --uts --net --ipc --fork --mount-proc sh -c 'hostname inner; echo hostname=$(hostname); echo pid1=$(ps -o pid,comm | awk \"\\$1 == 1 {print \\$2}\")'",
        // A cgroup of its own below the container's, with a memory limit that an allocation hits.
        // (cgroup v2: a group with processes cannot hand controllers down, so they move to a leaf first.)
        "cg=/sys/fs/cgroup/memory",
        "if [ ! -d $cg ]; then cg=/sys/fs/cgroup; mkdir $cg/init; for p in $(cat $cg/cgroup.procs); do echo $p > $cg/init/cgroup.procs 2>/dev/null || true; done; echo +memory > $cg/cgroup.subtree_control; fi",
        "mkdir $cg/box",
        "echo 50000000 > $cg/box/memory.limit_in_bytes 2>/dev/null || echo 50000000 > $cg/box/memory.max",
        "sh -c \"echo \\$\\$ > $cg/box/cgroup.procs; exec dd if=/dev/zero of=/dev/null bs=100M count=1\" && echo dd=survived || echo dd=killed",
        // A veth pair, one end moved into a network namespace the student made.
        "unshare --user --map-root-user --net sleep 30 & inner=$!; sleep 0.5",
        "ip link add v0 type veth peer name v1",
        "peer=$(ip -o link show | awk -F': ' '/@v0/ { sub(/@.*/, \"\", $2); print $2 }')",
        "ip link set $peer netns $inner",
        "echo moved=$(nsenter --target $inner --net --user --preserve-credentials ip -o link show | grep -c $peer)",
        "kill $inner",
      ].join("\n"),
    );
    expect(output).toContain("hostname=inner");
    expect(output).toContain("pid1=sh");
    expect(output).toContain("dd=killed");
    expect(output).toContain("moved=1");
    expect(code).toBe(0);
  });

  it("keeps the container inside its caps and away from the host and other containers", async () => {
    const siblingIp = sibling.ip;
    // A service of the host's, listening on every address: reachable from the host, not from a container.
    const service = net.createServer((socket) => socket.end());
    await new Promise<void>((resolve) => service.listen(0, "0.0.0.0", resolve));
    const hostPort = (service.address() as net.AddressInfo).port;
    after.push(() => new Promise<void>((resolve) => service.close(() => resolve())));
    const { output } = await inContainer(
      "nested",
      [
        "cg=/sys/fs/cgroup/memory; [ -d $cg ] || cg=/sys/fs/cgroup",
        // Its own limits are the host's: writing the same value back is refused.
        "f=$cg/memory.limit_in_bytes; [ -f $f ] || f=$cg/memory.max",
        "cat $f > /tmp/limit; (cat /tmp/limit > $f) 2>/dev/null; echo raise=$?",
        // The whole cgroup tree, mounted afresh from a user namespace of its own: refused (the cgroup namespace is the container's).
        "unshare --user --map-root-user --mount sh -c 'mkdir -p /tmp/cg; mount -t cgroup -o memory none /tmp/cg 2>/dev/null || mount -t cgroup2 none /tmp/cg 2>/dev/null'; echo cgroup_tree=$?",
        // The host's files: not there, and no block device to mount.
        `ls ${marker} 2>/dev/null; echo host_file=$?`,
        "unshare --user --map-root-user --mount sh -c 'mount -t ext4 /dev/vda /mnt' 2>/dev/null; echo mount_disk=$?",
        // The kernel's tunables: writing one back unchanged is refused.
        "(cat /proc/sys/kernel/printk > /proc/sys/kernel/printk) 2>/dev/null; echo sysctl=$?",
        // The other container, and the host (its bridge address).
        `ping -c 1 -W 1 ${siblingIp} >/dev/null 2>&1; echo sibling=$?`,
        `gw=$(ip route | awk '/default/ {print $3}'); nc -z -w 1 $gw ${hostPort} 2>/dev/null; echo host_port=$?`,
      ].join("\n"),
    );
    expect(output).toMatch(/^raise=[1-9]/m);
    expect(output).toMatch(/^cgroup_tree=[1-9]/m);
    expect(output).toMatch(/^host_file=[1-9]/m);
    expect(output).toMatch(/^mount_disk=[1-9]/m);
    expect(output).toMatch(/^sysctl=[1-9]/m);
    expect(output).toMatch(/^sibling=[1-9]/m);
    expect(output).toMatch(/^host_port=[1-9]/m);
  });

  it("removes the cgroups a student made when the container ends", async () => {
    const { id } = await inContainer("nested", "cg=/sys/fs/cgroup/memory; [ -d $cg ] || cg=/sys/fs/cgroup; mkdir -p $cg/a/b; sleep 60 & echo $! > $cg/a/b/cgroup.procs; true");
    const left = (await engine.leaks()).filter((l) => l.description.includes(id));
    expect(left).toEqual([]);
  });
});
