// SIGTERM (what systemd or Ctrl-C sends) ends every session cleanly: the
// students are told, their containers are removed, even one still starting,
// the server exits 0, and `playground doctor --leaks` finds nothing left.
import { afterAll, describe, expect, inject, it } from "vitest";
import { JOIN_CODE, startServer, type TestServer } from "../fixtures/web-server.ts";

let server: TestServer | undefined;
afterAll(async () => {
  await server?.stop();
});

describe("SIGTERM", () => {
  it("ends every session, removes every container, exits 0 and leaves nothing behind", async () => {
    server = await startServer(inject("registry"));
    await server.waitForLog(/^default image ready$/);
    const a = await server.student();
    const b = await server.student();
    await Promise.all([a.start(), b.start()]);
    // A third is still starting when the signal comes.
    const c = await server.student();
    c.socket.emit("start", { code: JOIN_CODE });
    const starting = () => server!.logs().filter((l) => l.msg === "session starting").length;
    await expect.poll(starting, { timeout: 10_000, interval: 20 }).toBe(3);

    const endedA = a.next("ended", 20_000);
    const endedB = b.next("ended", 20_000);
    const exited = server.kill("SIGTERM");
    expect(await endedA).toEqual(["the server is shutting down"]);
    expect(await endedB).toEqual(["the server is shutting down"]);
    expect(await exited).toEqual({ code: 0, signal: null });
    expect(server.logs().some((l) => l.msg === "stopped")).toBe(true);

    const ps = await server.sandbox.run(["ps", "-a"]);
    expect(ps.stdout.trim().split("\n")).toHaveLength(1); // the header only
    const leaks = await server.leaks();
    expect(leaks.code, leaks.stdout + leaks.stderr).toBe(0);
  });
});
