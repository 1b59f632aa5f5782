// How a container's command, environment, working directory and user follow
// from the image config and the request: docker run's rules.
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { containerEnv, mergeEnv, resolveArgv, resolveUser, resolveWorkingDir, RunConfigError } from "../../server/engine/process/run-config.ts";

describe("command", () => {
  it("is Entrypoint followed by Cmd when no command is given", () => {
    expect(resolveArgv({ Entrypoint: ["/bin/echo", "hi"], Cmd: ["there"] }, undefined)).toEqual(["/bin/echo", "hi", "there"]);
  });
  it("replaces Cmd, never Entrypoint, with the given command", () => {
    expect(resolveArgv({ Entrypoint: ["/entry"], Cmd: ["default"] }, ["mine", "-x"])).toEqual(["/entry", "mine", "-x"]);
    expect(resolveArgv({ Cmd: ["/bin/sh"] }, ["ls", "/"])).toEqual(["ls", "/"]);
  });
  it("an empty command list means the image's Cmd", () => {
    expect(resolveArgv({ Cmd: ["/bin/sh"] }, [])).toEqual(["/bin/sh"]);
  });
  it("refuses to run nothing", () => {
    expect(() => resolveArgv({}, undefined)).toThrow(RunConfigError);
  });
});

describe("environment", () => {
  it("merges by name, later lists winning, order of first appearance kept", () => {
    expect(mergeEnv(["A=1", "B=2"], ["B=3", "C=4"], ["A=x=y"])).toEqual(["A=x=y", "B=3", "C=4"]);
  });
  it("refuses entries without a name", () => {
    expect(() => mergeEnv(["=oops"])).toThrow(RunConfigError);
    expect(() => mergeEnv(["NOVALUE"])).toThrow(RunConfigError);
  });
  it("starts from PATH, HOSTNAME, HOME (and TERM with a terminal), then the image, then the request", () => {
    const env = containerEnv({
      image: { Env: ["PATH=/opt/bin:/bin", "GREETING=image"] },
      request: ["GREETING=request"],
      hostname: "box",
      home: "/root",
      tty: true,
    });
    expect(env).toEqual(["PATH=/opt/bin:/bin", "HOSTNAME=box", "HOME=/root", "TERM=xterm", "GREETING=request"]);
    expect(containerEnv({ image: {}, hostname: "b", home: "/", tty: false }).some((e) => e.startsWith("TERM="))).toBe(false);
  });
});

describe("working directory", () => {
  it("is the image's, or /", () => {
    expect(resolveWorkingDir({ WorkingDir: "/srv/app" })).toBe("/srv/app");
    expect(resolveWorkingDir({})).toBe("/");
    expect(resolveWorkingDir({ WorkingDir: "" })).toBe("/");
  });
  it("must be absolute", () => {
    expect(() => resolveWorkingDir({ WorkingDir: "relative" })).toThrow(RunConfigError);
  });
});

describe("user", () => {
  let root: string;
  let outside: string;
  beforeAll(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), "pg-rootfs-"));
    outside = await fs.mkdtemp(path.join(os.tmpdir(), "pg-outside-"));
    await fs.mkdir(path.join(root, "etc"));
    await fs.writeFile(
      path.join(root, "etc/passwd"),
      "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/sbin/nologin\nstudent:x:1000:1001:Student:/home/student:/bin/sh\n",
    );
    await fs.writeFile(path.join(root, "etc/group"), "root:x:0:\nstaff:x:50:\nstudents:x:1001:\n");
  });
  afterAll(async () => {
    await fs.rm(root, { recursive: true, force: true });
    await fs.rm(outside, { recursive: true, force: true });
  });

  it("defaults to root", async () => {
    expect(await resolveUser(root, undefined, 65536)).toEqual({ uid: 0, gid: 0, home: "/root" });
    expect(await resolveUser(root, "", 65536)).toEqual({ uid: 0, gid: 0, home: "/root" });
  });
  it("looks names up in the container's /etc/passwd, with their primary group and home", async () => {
    expect(await resolveUser(root, "student", 65536)).toEqual({ uid: 1000, gid: 1001, home: "/home/student" });
  });
  it("takes numbers as they are, and a group by number or name", async () => {
    expect(await resolveUser(root, "1000", 65536)).toEqual({ uid: 1000, gid: 1001, home: "/home/student" });
    expect(await resolveUser(root, "4242", 65536)).toEqual({ uid: 4242, gid: 0, home: "/" });
    expect(await resolveUser(root, "4242:7", 65536)).toMatchObject({ uid: 4242, gid: 7 });
    expect(await resolveUser(root, "student:staff", 65536)).toMatchObject({ uid: 1000, gid: 50 });
  });
  it("refuses unknown names and ids the user namespace cannot map", async () => {
    await expect(resolveUser(root, "ghost", 65536)).rejects.toThrow(/unable to find user ghost/);
    await expect(resolveUser(root, "student:ghosts", 65536)).rejects.toThrow(/unable to find group ghosts/);
    await expect(resolveUser(root, "70000", 65536)).rejects.toThrow(/outside/);
  });
  it("resolves /etc/passwd symlinks inside the container's root, never the host's", async () => {
    const evil = await fs.mkdtemp(path.join(os.tmpdir(), "pg-rootfs-"));
    try {
      await fs.writeFile(path.join(outside, "passwd"), "intruder:x:7:7::/:/bin/sh\n");
      await fs.mkdir(path.join(evil, "etc"));
      // An absolute target and a climbing relative one: both must stay in `evil`.
      await fs.symlink(path.join(outside, "passwd"), path.join(evil, "etc/passwd"));
      await expect(resolveUser(evil, "intruder", 65536)).rejects.toThrow(/unable to find user/);
      await fs.rm(path.join(evil, "etc/passwd"));
      await fs.symlink(`../../../../../../../..${outside}/passwd`, path.join(evil, "etc/passwd"));
      await expect(resolveUser(evil, "intruder", 65536)).rejects.toThrow(/unable to find user/);
      // A link that stays inside works, as in a chroot.
      await fs.mkdir(path.join(evil, "data"));
      await fs.writeFile(path.join(evil, "data/passwd"), "inside:x:12:34::/in:/bin/sh\n");
      await fs.rm(path.join(evil, "etc/passwd"));
      await fs.symlink("/data/passwd", path.join(evil, "etc/passwd"));
      expect(await resolveUser(evil, "inside", 65536)).toEqual({ uid: 12, gid: 34, home: "/in" });
    } finally {
      await fs.rm(evil, { recursive: true, force: true });
    }
  });
});
