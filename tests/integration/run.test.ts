// `playground run`, `ps` and `rm` end to end, as a user types them: the real
// CLI, real images from the test registry, real namespaces, cgroups, overlay
// and network. Checks the image config is honoured like `docker run` does it,
// the exit status passes through, and -it gives a real terminal.
import { spawn } from "node:child_process";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { finished } from "../fixtures/cli.ts";
import { LAYERED } from "../fixtures/images.ts";
import { makePlayground, waitFor, type Playground } from "../fixtures/containers.ts";

const BIN = path.resolve(import.meta.dirname, "../../bin/playground.mjs");
let pg: Playground;

beforeAll(async () => {
  pg = await makePlayground(inject("registry"));
});
afterAll(async () => {
  await pg?.teardown();
});

describe("playground run", () => {
  it("pulls a missing image, showing progress on stderr, and runs the image's Entrypoint + Cmd with its Env, WorkingDir and User", async () => {
    const result = await pg.cli(["run", "--rm", pg.images.layered]);
    expect(result.code, result.stderr).toBe(0);
    // Entrypoint ["/bin/sh","-c"], Cmd: echo "$GREETING in $(pwd) as $(id -u):$(id -g)"
    expect(result.stdout).toBe(`hello from the layered image in ${LAYERED.config.WorkingDir} as 1001:1002\n`);
    expect(result.stderr).toMatch(/layered/); // the pull's progress
  });

  it("replaces Cmd (not Entrypoint) with the given command, and -e overrides the image's Env", async () => {
    const result = await pg.cli(["run", "--rm", "-e", "GREETING=overridden", "-e", "EXTRA=1", pg.images.layered, 'echo "$GREETING $EXTRA $HOSTNAME"']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^overridden 1 [0-9a-f]{12}\n$/);
  });

  it("passes the container's exit status through", async () => {
    expect((await pg.cli(["run", "--rm", pg.images.busybox, "sh", "-c", "exit 7"])).code).toBe(7);
    expect((await pg.cli(["run", "--rm", pg.images.busybox, "true"])).code).toBe(0);
    expect((await pg.cli(["run", "--rm", pg.images.busybox, "false"])).code).toBe(1);
  });

  it("passes stdin through with -i, and stdout and stderr as they are", async () => {
    const child = spawn(process.execPath, [BIN, "run", "--rm", "-i", pg.images.busybox, "tr", "a-z", "A-Z"], {
      cwd: pg.sandbox.cwd,
      env: pg.sandbox.env(pg.settings),
      stdio: ["pipe", "pipe", "pipe"],
    });
    child.stdin!.end("shout this\n");
    const upper = await finished(child);
    expect(upper.code, upper.stderr).toBe(0);
    expect(upper.stdout).toBe("SHOUT THIS\n");

    const result = await pg.cli(["run", "--rm", pg.images.busybox, "sh", "-c", "echo out; echo err >&2; cat; echo eof"]);
    expect(result.stdout).toBe("out\neof\n"); // without -i, stdin is empty
    expect(result.stderr).toContain("err\n");
  });

  it("uses the given name and hostname; refuses a name in use", async () => {
    const first = await pg.cli(["run", "--name", "named-one", "--hostname", "box.example", pg.images.busybox, "hostname"]);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toBe("box.example\n");
    const again = await pg.cli(["run", "--name", "named-one", pg.images.busybox, "true"]);
    expect(again.code).toBe(125);
    expect(again.stderr).toMatch(/already in use/);
    expect((await pg.cli(["rm", "named-one"])).code).toBe(0);
  });

  it("refuses unknown flags with a usage error (exit 2)", async () => {
    const result = await pg.cli(["run", "--no-such-flag", pg.images.busybox]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/usage: playground run/);
  });

  it("reports a command missing from the image as a failure to start, not a crash", async () => {
    const result = await pg.cli(["run", "--rm", pg.images.busybox, "/no/such/program"]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).not.toMatch(/^\s+at /m);
  });
});

describe("playground ps and rm", () => {
  it("lists a running container, then the exited one with -a, and rm removes it", async () => {
    const child = pg.sandbox.spawn(["run", "--name", "sleeper", pg.images.busybox, "sleep", "300"], pg.settings);
    const done = finished(child);
    try {
      const line = await waitFor("sleeper to run", async () => {
        const ps = await pg.cli(["ps"]);
        return ps.stdout.split("\n").find((l) => l.includes("sleeper") && l.includes("running"));
      });
      const [id, name, image, state, pid, ip] = line.split(/\s+/);
      expect(id).toMatch(/^[0-9a-f]{12}$/);
      expect([name, image, state]).toEqual(["sleeper", pg.images.busybox, "running"]);
      expect(Number(pid)).toBeGreaterThan(1);
      expect(ip).toMatch(/^\d+\.\d+\.\d+\.\d+$/);

      // rm of a running container kills it: `run` then exits with 128 + SIGKILL.
      expect((await pg.cli(["rm", id])).code).toBe(0);
      expect((await done).code).toBe(137);
      expect((await pg.cli(["ps", "-a"])).stdout).not.toContain("sleeper");
    } finally {
      child.kill("SIGKILL");
    }
  });

  it("keeps an exited container without --rm, shows its exit status, and removes it by name", async () => {
    expect((await pg.cli(["run", "--name", "keeper", pg.images.busybox, "sh", "-c", "exit 3"])).code).toBe(3);
    expect((await pg.cli(["ps"])).stdout).not.toContain("keeper");
    const ps = await pg.cli(["ps", "-a"]);
    expect(ps.stdout.split("\n")[0]).toMatch(/^ID\s+NAME\s+IMAGE\s+STATE\s+PID\s+IP\s+CREATED$/);
    expect(ps.stdout).toMatch(/keeper\s+\S+\s+exited \(3\)/);
    expect((await pg.cli(["rm", "keeper"])).code).toBe(0);
    expect((await pg.cli(["ps", "-a"])).stdout).not.toContain("keeper");
    const missing = await pg.cli(["rm", "keeper"]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/no such container/);
  });
});

describe("playground run -it", () => {
  it("gives a real terminal: its own hostname, root inside mapped to an unprivileged host uid", async () => {
    // A terminal of 100 × 30 for the CLI, as a user's: util-linux's `script` holds it, relaying our pipes.
    const cli = `stty cols 100 rows 30; exec ${process.execPath} ${BIN} run -it --rm ${pg.images.alpine}`;
    const term = spawn("script", ["-qec", cli, "/dev/null"], { cwd: pg.sandbox.cwd, env: pg.sandbox.env(pg.settings), stdio: ["pipe", "pipe", "inherit"] });
    let output = "";
    term.stdout!.setEncoding("utf8").on("data", (d: string) => (output += d));
    const exit = new Promise<number | null>((resolve) => term.once("exit", (code) => resolve(code)));
    try {
      // Alpine's shell prompt, "/ # " (followed by a cursor position query).
      await waitFor("a shell prompt", async () => (output.includes("/ # ") ? true : undefined), 60_000);
      term.stdin!.write("echo H=$(hostname); id; cat /proc/self/uid_map; stty size; tty; echo done\r");
      await waitFor("the answers", async () => (/^done\r*$/m.test(output) ? true : undefined));
      term.stdin!.write("exit 5\r");
      expect(await exit).toBe(5);
    } finally {
      term.kill("SIGKILL");
    }
    expect(output).toMatch(/H=[0-9a-f]{12}\r*\n/);
    expect(output).toMatch(/uid=0\(root\) gid=0\(root\)/);
    expect(output).toMatch(/^\s*0\s+100000\s+65536\s*$/m);
    expect(output).toMatch(/^30 100\r*$/m); // the terminal's size reached the container
    expect(output).toMatch(/^\/dev\/pts\/0\r*$/m); // a terminal of the container's own devpts
  });
});
